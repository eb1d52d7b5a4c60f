//! The loan book: customers with credit limits, and the loans opened against them.
//!
//! Amounts are integer minor units (rials), never floats.

use std::collections::BTreeMap;

use serde::Serialize;

/// A borrower.
#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// Most the customer may owe at once.
    pub credit_limit: u64,
}

/// A loan.
#[derive(Debug, Clone, Serialize)]
pub struct Loan {
    pub id: u64,
    pub customer_id: String,
    pub amount: u64,
    pub term_months: u32,
}

/// Why a loan was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum LoanError {
    UnknownCustomer(String),
    InvalidTerms(&'static str),
    CreditLimitExceeded { requested: u64, available: u64 },
}

/// All customers and loans.
#[derive(Debug, Default)]
pub struct Ledger {
    customers: BTreeMap<String, Customer>,
    loans: BTreeMap<u64, Loan>,
    next_loan_id: u64,
}

/// Id of the seeded customer the demo endpoints use.
pub const DEMO_CUSTOMER: &str = "c-1001";
/// Id of a loan imported from the previous system without a term (see `installment`).
pub const IMPORTED_LOAN: u64 = 1;

impl Ledger {
    /// A ledger with demonstration customers and loans.
    pub fn seeded() -> Self {
        let mut ledger = Self {
            next_loan_id: 1,
            ..Self::default()
        };
        for (id, name, limit) in [
            (DEMO_CUSTOMER, "Sara Ahmadi", 50_000_000),
            ("c-1002", "Reza Karimi", 120_000_000),
            ("c-1003", "Mina Rahimi", 10_000_000),
        ] {
            ledger.customers.insert(
                id.to_owned(),
                Customer {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    credit_limit: limit,
                },
            );
        }
        // Loans migrated from the previous system arrived without a term (0 months); the
        // migration did not reject them.
        ledger.insert_loan("c-1002", 30_000_000, 0);
        ledger.insert_loan(DEMO_CUSTOMER, 20_000_000, 24);
        ledger
    }

    fn insert_loan(&mut self, customer_id: &str, amount: u64, term_months: u32) -> Loan {
        let loan = Loan {
            id: self.next_loan_id,
            customer_id: customer_id.to_owned(),
            amount,
            term_months,
        };
        self.next_loan_id += 1;
        self.loans.insert(loan.id, loan.clone());
        loan
    }

    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.get(id)
    }

    pub fn loan(&self, id: u64) -> Option<&Loan> {
        self.loans.get(&id)
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.customers.len(), self.loans.len())
    }

    /// What the customer owes across all loans.
    pub fn outstanding(&self, customer_id: &str) -> u64 {
        self.loans
            .values()
            .filter(|l| l.customer_id == customer_id)
            .map(|l| l.amount)
            .sum()
    }

    /// Credit still available to the customer.
    pub fn available_credit(&self, customer: &Customer) -> u64 {
        customer
            .credit_limit
            .saturating_sub(self.outstanding(&customer.id))
    }

    /// Opens a loan if the customer's available credit covers it.
    pub fn open_loan(
        &mut self,
        customer_id: &str,
        amount: u64,
        term_months: u32,
    ) -> Result<Loan, LoanError> {
        if amount == 0 {
            return Err(LoanError::InvalidTerms("amount must be positive"));
        }
        if !(1..=360).contains(&term_months) {
            return Err(LoanError::InvalidTerms(
                "term must be between 1 and 360 months",
            ));
        }
        let customer = self
            .customer(customer_id)
            .ok_or_else(|| LoanError::UnknownCustomer(customer_id.to_owned()))?;
        let available = self.available_credit(customer);
        if amount > available {
            return Err(LoanError::CreditLimitExceeded {
                requested: amount,
                available,
            });
        }
        Ok(self.insert_loan(customer_id, amount, term_months))
    }
}

/// Monthly installment of a loan (interest-free; the bank charges a fee instead).
///
/// Loans opened through [`Ledger::open_loan`] always have a term, so this divides without
/// checking; loans imported without one make it panic. That is the bug `/app-error` shows.
pub fn installment(loan: &Loan) -> u64 {
    loan.amount.div_ceil(u64::from(loan.term_months))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loan_within_available_credit_is_opened_and_counts_against_it() {
        let mut ledger = Ledger::seeded();
        let customer = ledger.customer(DEMO_CUSTOMER).cloned().expect("seeded");
        let before = ledger.available_credit(&customer);
        let loan = ledger
            .open_loan(DEMO_CUSTOMER, 1_000_000, 12)
            .expect("within limit");
        assert_eq!(ledger.available_credit(&customer), before - 1_000_000);
        assert_eq!(ledger.loan(loan.id).map(|l| l.amount), Some(1_000_000));
    }

    #[test]
    fn loan_above_available_credit_is_refused_with_the_figures() {
        let mut ledger = Ledger::seeded();
        let err = ledger
            .open_loan(DEMO_CUSTOMER, 40_000_000, 12)
            .expect_err("20M of 50M already used");
        assert_eq!(
            err,
            LoanError::CreditLimitExceeded {
                requested: 40_000_000,
                available: 30_000_000
            }
        );
    }

    #[test]
    fn unknown_customer_and_invalid_terms_are_refused() {
        let mut ledger = Ledger::seeded();
        assert!(matches!(
            ledger.open_loan("c-9", 1, 1),
            Err(LoanError::UnknownCustomer(_))
        ));
        assert!(matches!(
            ledger.open_loan(DEMO_CUSTOMER, 0, 1),
            Err(LoanError::InvalidTerms(_))
        ));
        assert!(matches!(
            ledger.open_loan(DEMO_CUSTOMER, 1, 0),
            Err(LoanError::InvalidTerms(_))
        ));
    }

    #[test]
    fn installment_rounds_up_so_the_loan_is_fully_repaid() {
        let loan = Loan {
            id: 9,
            customer_id: "c".into(),
            amount: 100,
            term_months: 3,
        };
        assert_eq!(installment(&loan), 34);
    }
}
