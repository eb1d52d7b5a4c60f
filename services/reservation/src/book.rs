//! The reservation book: slots and the reservations holding them.

use std::collections::BTreeMap;

use serde::Serialize;

/// A time slot that one customer can hold.
#[derive(Debug, Clone, Serialize)]
pub struct Slot {
    pub id: String,
    pub starts_at: String,
    pub minutes: u32,
}

/// A customer's hold on a slot.
#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    pub id: u64,
    pub slot_id: String,
    pub customer_id: String,
}

/// Why a reservation was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum ReserveError {
    UnknownSlot(String),
    SlotTaken {
        slot_id: String,
        reservation_id: u64,
    },
}

/// Slots and reservations.
#[derive(Debug, Default)]
pub struct Book {
    slots: BTreeMap<String, Slot>,
    reservations: BTreeMap<u64, Reservation>,
    next_id: u64,
}

/// A slot that is reserved from the start (the demo's business error).
pub const TAKEN_SLOT: &str = "2025-12-01T09:00";

impl Book {
    /// A book with a morning of slots, the first one already reserved.
    pub fn seeded() -> Self {
        let mut book = Self {
            next_id: 1,
            ..Self::default()
        };
        for hour in 9..13 {
            for minute in [0, 30] {
                let id = format!("2025-12-01T{hour:02}:{minute:02}");
                book.slots.insert(
                    id.clone(),
                    Slot {
                        starts_at: format!("{id}:00+03:30"),
                        id,
                        minutes: 30,
                    },
                );
            }
        }
        // The 08:30 slot was removed when the branch changed its hours, but its reservation
        // was left behind: removing a slot does not cascade. `utilisation` trips over it.
        book.reservations.insert(
            0,
            Reservation {
                id: 0,
                slot_id: "2025-12-01T08:30".to_owned(),
                customer_id: "c-1003".to_owned(),
            },
        );
        // Infallible: the slot was inserted just above.
        let _ = book.reserve(TAKEN_SLOT, "c-1002");
        book
    }

    pub fn slots(&self) -> impl Iterator<Item = (&Slot, Option<&Reservation>)> {
        self.slots
            .values()
            .map(|slot| (slot, self.holder(&slot.id)))
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.slots.len(), self.reservations.len())
    }

    fn holder(&self, slot_id: &str) -> Option<&Reservation> {
        self.reservations.values().find(|r| r.slot_id == slot_id)
    }

    /// Reserves a free slot.
    pub fn reserve(
        &mut self,
        slot_id: &str,
        customer_id: &str,
    ) -> Result<Reservation, ReserveError> {
        if !self.slots.contains_key(slot_id) {
            return Err(ReserveError::UnknownSlot(slot_id.to_owned()));
        }
        if let Some(existing) = self.holder(slot_id) {
            return Err(ReserveError::SlotTaken {
                slot_id: slot_id.to_owned(),
                reservation_id: existing.id,
            });
        }
        let reservation = Reservation {
            id: self.next_id,
            slot_id: slot_id.to_owned(),
            customer_id: customer_id.to_owned(),
        };
        self.next_id += 1;
        self.reservations
            .insert(reservation.id, reservation.clone());
        Ok(reservation)
    }

    /// Reserved minutes per day. Assumes every reservation points at an existing slot,
    /// which the seeded orphan breaks: this is the bug `/app-error` shows.
    pub fn utilisation(&self) -> BTreeMap<String, u32> {
        let mut per_day = BTreeMap::new();
        for reservation in self.reservations.values() {
            let slot = &self.slots[&reservation.slot_id];
            let day = slot
                .starts_at
                .get(..10)
                .unwrap_or(&slot.starts_at)
                .to_owned();
            *per_day.entry(day).or_insert(0) += slot.minutes;
        }
        per_day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_slot_can_be_reserved_once_then_is_taken() {
        let mut book = Book::seeded();
        let r = book
            .reserve("2025-12-01T10:00", "c-1001")
            .expect("free slot");
        assert_eq!(r.slot_id, "2025-12-01T10:00");
        assert_eq!(
            book.reserve("2025-12-01T10:00", "c-1002").err(),
            Some(ReserveError::SlotTaken {
                slot_id: "2025-12-01T10:00".into(),
                reservation_id: r.id
            })
        );
    }

    #[test]
    fn the_seeded_taken_slot_refuses_and_unknown_slots_are_reported() {
        let mut book = Book::seeded();
        assert!(matches!(
            book.reserve(TAKEN_SLOT, "c-1001"),
            Err(ReserveError::SlotTaken { .. })
        ));
        assert!(matches!(
            book.reserve("2030-01-01T00:00", "c-1001"),
            Err(ReserveError::UnknownSlot(_))
        ));
    }

    #[test]
    fn slots_list_shows_who_holds_each() {
        let book = Book::seeded();
        let taken: Vec<_> = book
            .slots()
            .filter(|(_, holder)| holder.is_some())
            .map(|(s, _)| s.id.clone())
            .collect();
        assert_eq!(taken, vec![TAKEN_SLOT.to_owned()]);
    }
}
