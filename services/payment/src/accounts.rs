//! Accounts, balances, fees and the payments taken from them.

use std::collections::BTreeMap;

use std::fmt;

use serde::{Deserialize, Serialize};
use service_kit::redact::{self, mask_card_number};

/// A customer's account.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: String,
    pub customer_id: String,
    pub balance: u64,
}

/// A payment taken from an account. Holds the card number masked, never in clear.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub id: u64,
    pub account_id: String,
    pub amount: u64,
    pub fee: u64,
    pub card: String,
    pub loan_id: Option<u64>,
    pub reservation_id: Option<u64>,
}

/// Why a payment was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PaymentError {
    UnknownAccount(String),
    InsufficientBalance { needed: u64, balance: u64 },
}

/// Fee per amount tier, in basis points: larger payments pay proportionally less.
const FEE_BASIS_POINTS: [u64; 4] = [150, 100, 75, 50];

/// Fee for a payment of `amount`. Tiers go up every two decimal digits from 1 000.
///
/// The table has no tier for amounts of 100 000 000 000 and more, and nothing checks:
/// such an amount indexes past the end and panics. That is the bug `/app-error` shows.
pub fn fee_for(amount: u64) -> u64 {
    let tier = (amount.max(1).ilog10() as usize).saturating_sub(3) / 2;
    (amount * FEE_BASIS_POINTS[tier]).div_ceil(10_000)
}

/// A card number as the client sent it. Its `Debug` shows only the last four digits, so a
/// debug line of a request cannot print it, whatever the log filter or masking.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct CardNumber(String);

impl CardNumber {
    /// The last four digits, for storage and answers.
    pub fn masked(&self) -> String {
        mask_card_number(&self.0)
    }

    /// Whether it is a plausible card number: 13 to 19 digits of any script (Persian ones
    /// included), grouped by spaces, dashes or other separators, passing the Luhn check.
    pub fn is_valid(&self) -> bool {
        let digits: Vec<u8> = self.0.chars().filter_map(redact::decimal_value).collect();
        self.0
            .chars()
            .all(|c| redact::decimal_value(c).is_some() || redact::is_separator(c))
            && (13..=19).contains(&digits.len())
            && redact::luhn_valid(&digits)
    }
}

impl From<&str> for CardNumber {
    fn from(card: &str) -> Self {
        Self(card.to_owned())
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

/// Accounts and payments.
#[derive(Debug, Default)]
pub struct Accounts {
    accounts: BTreeMap<String, Account>,
    payments: Vec<Payment>,
    /// Settlements waiting for the card processor (amounts).
    pub pending_settlements: Vec<u64>,
}

/// An account with a small balance (the demo's business error).
pub const SMALL_ACCOUNT: &str = "a-1002";

impl Accounts {
    /// Demonstration accounts and one large pending settlement.
    pub fn seeded() -> Self {
        let mut accounts = Self::default();
        for (id, customer, balance) in [
            ("a-1001", "c-1001", 100_000_000),
            (SMALL_ACCOUNT, "c-1002", 5_000_000),
            ("a-1003", "c-1003", 40_000_000),
        ] {
            accounts.accounts.insert(
                id.to_owned(),
                Account {
                    id: id.to_owned(),
                    customer_id: customer.to_owned(),
                    balance,
                },
            );
        }
        accounts.pending_settlements.push(250_000_000_000);
        accounts
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.accounts.len(), self.payments.len())
    }

    /// Checks that `account_id` can pay `amount + fee` without taking it.
    pub fn check(&self, account_id: &str, amount: u64, fee: u64) -> Result<&Account, PaymentError> {
        let account = self
            .accounts
            .get(account_id)
            .ok_or_else(|| PaymentError::UnknownAccount(account_id.to_owned()))?;
        let needed = amount.saturating_add(fee);
        if needed > account.balance {
            return Err(PaymentError::InsufficientBalance {
                needed,
                balance: account.balance,
            });
        }
        Ok(account)
    }

    /// Takes the payment (checking the balance again: it may have changed meanwhile).
    pub fn take(&mut self, mut payment: Payment) -> Result<Payment, PaymentError> {
        self.check(&payment.account_id, payment.amount, payment.fee)?;
        if let Some(account) = self.accounts.get_mut(&payment.account_id) {
            account.balance -= payment.amount + payment.fee;
        }
        payment.id = self.payments.len() as u64 + 1;
        self.payments.push(payment.clone());
        Ok(payment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(account: &str, amount: u64) -> Payment {
        Payment {
            id: 0,
            account_id: account.into(),
            amount,
            fee: fee_for(amount),
            card: "************1111".into(),
            loan_id: None,
            reservation_id: None,
        }
    }

    #[test]
    fn fees_fall_by_tier() {
        assert_eq!(fee_for(1_000), 15);
        assert_eq!(fee_for(100_000), 1_000);
        assert_eq!(fee_for(10_000_000), 75_000);
        assert_eq!(fee_for(10_000_000_000), 50_000_000);
    }

    #[test]
    fn payment_within_balance_is_taken_and_debited_with_its_fee() {
        let mut accounts = Accounts::seeded();
        let taken = accounts
            .take(payment("a-1001", 1_000_000))
            .expect("enough balance");
        assert_eq!(taken.id, 1);
        assert_eq!(
            accounts.account("a-1001").map(|a| a.balance),
            Some(100_000_000 - 1_000_000 - 10_000)
        );
    }

    #[test]
    fn payment_above_balance_is_refused_and_nothing_is_debited() {
        let mut accounts = Accounts::seeded();
        let err = accounts
            .take(payment(SMALL_ACCOUNT, 9_000_000))
            .expect_err("balance is 5M");
        assert!(matches!(
            err,
            PaymentError::InsufficientBalance {
                balance: 5_000_000,
                ..
            }
        ));
        assert_eq!(
            accounts.account(SMALL_ACCOUNT).map(|a| a.balance),
            Some(5_000_000)
        );
    }

    #[test]
    fn card_numbers_must_pass_luhn_in_any_digit_script() {
        for valid in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱",
        ] {
            assert!(CardNumber::from(valid).is_valid(), "{valid}");
        }
        for invalid in ["4111 1111 1111 1112", "4111-1111-1111-111x", "4242"] {
            assert!(!CardNumber::from(invalid).is_valid(), "{invalid}");
        }
    }

    #[test]
    fn a_card_number_prints_only_its_last_four_digits() {
        for card in [
            "4111 1111 1111 1111",
            "۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱",
            "4111.1111.1111.1111",
        ] {
            let shown = format!("{:?}", CardNumber::from(card));
            assert_eq!(
                shown
                    .chars()
                    .filter(|c| redact::decimal_value(*c).is_some())
                    .count(),
                4,
                "{shown}"
            );
            assert!(!redact::contains_pan(&shown), "{shown}");
        }
    }
}
