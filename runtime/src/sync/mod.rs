//! Core-local synchronisation (arriving).
