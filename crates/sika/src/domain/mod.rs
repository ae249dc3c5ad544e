//! Pure rules, no I/O: validated inputs and the state machines money moves through.

pub mod checkout;
