//! sluice-cache
