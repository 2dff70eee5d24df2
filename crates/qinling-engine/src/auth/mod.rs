//! Authorisation below the HTTP edge: [`policy`] (oslo.policy-style rules: which identity may
//! do which action; pure) and [`tokens`] (API tokens of `auth.mode = "token"`: hashed secrets,
//! expiry, revocation). Whose rows a caller sees once allowed is `scope.rs`. Authentication
//! itself — the middleware and the Keystone cache — is the HTTP edge's (`qinling-api`'s
//! `auth/`); the Keystone HTTP client and the `qinling token` command live in the binary's
//! `auth/`.

pub mod policy;
pub mod tokens;
