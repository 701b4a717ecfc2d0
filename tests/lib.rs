//! Black-box end-to-end tests over the whole platform live in `e2e/`; this library is empty.
