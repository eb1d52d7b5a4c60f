//! The four log categories: whose problem a line is, written in `log.category`.

use std::fmt;
use std::str::FromStr;

/// Whose problem a line is: the question a reader of the logs asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Normal operation.
    ApplicationInfo,
    /// A bug: a panic or a state the code should never reach.
    ApplicationError,
    /// A domain rule refused the request; the service worked as designed.
    BusinessError,
    /// Infrastructure failed: a dependency is down, slow or unreachable.
    SystemError,
}

impl Category {
    /// All categories, in a stable order.
    pub const ALL: [Category; 4] = [
        Category::ApplicationInfo,
        Category::ApplicationError,
        Category::BusinessError,
        Category::SystemError,
    ];

    /// The name written in `log.category`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::ApplicationInfo => "ApplicationInfo",
            Category::ApplicationError => "ApplicationError",
            Category::BusinessError => "BusinessError",
            Category::SystemError => "SystemError",
        }
    }

    /// Whether lines of this category carry `error.stack_trace`. Business errors do not:
    /// the service did what it was designed to do, and a trace would only be noise.
    pub const fn captures_stack_trace(self) -> bool {
        matches!(self, Category::ApplicationError | Category::SystemError)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing a category name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown log category {0:?}")]
pub struct UnknownCategory(String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_round_trip_through_from_str() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().ok(), Some(c));
        }
        assert!("Info".parse::<Category>().is_err());
    }

    #[test]
    fn only_application_and_system_errors_capture_stack_traces() {
        assert!(Category::ApplicationError.captures_stack_trace());
        assert!(Category::SystemError.captures_stack_trace());
        assert!(!Category::BusinessError.captures_stack_trace());
        assert!(!Category::ApplicationInfo.captures_stack_trace());
    }
}
