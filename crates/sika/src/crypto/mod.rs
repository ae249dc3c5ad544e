//! Cryptographic building blocks: the key ring for encryption at rest, random tokens.

pub mod keyring;
pub mod random;
