//! An HTTP client for the raftkv API (to be implemented).
