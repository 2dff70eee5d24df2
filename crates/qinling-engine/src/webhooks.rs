//! Webhooks (reference §3.8): create, list, show, update, delete, and the unauthenticated
//! invocation that turns request parameters into an async execution of the webhook's target
//! in the webhook owner's project. Invocations are rate-limited per webhook
//! ([`RateLimiter`], configured by `webhook_invocations_per_minute`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qinling_store::Scope;
use qinling_types::{Error, RequestContext, Webhook, new_id, now, py_json};
use qinling_types::{ExecutionId, FunctionId, WebhookId};

use crate::scope::{self, ListQuery, OwnProject};
use crate::{CreateExecution, Engine, ExecutionTarget};

/// What a webhook runs: a function (and version), or an alias.
#[derive(Debug, Clone, Default)]
pub struct WebhookTarget {
    pub function_id: Option<FunctionId>,
    pub function_version: Option<i64>,
    pub function_alias: Option<String>,
}

/// A webhook-update request; `None` leaves a field unchanged. A new alias replaces the
/// function target and a new function target replaces the alias (as upstream).
#[derive(Debug, Clone, Default)]
pub struct UpdateWebhook {
    pub target: WebhookTarget,
    pub description: Option<String>,
}

/// At most `limit` events per key in any sliding `window`; 0 is unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event for `key` at `at` if it is within the limit; `false` if not.
    pub fn allow(&self, key: &str, at: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.window;
        let expired = |t: &Instant| at.saturating_duration_since(*t) >= window;
        if hits.len() > 4096 {
            // Forget keys (deleted or quiet webhooks) with no recent event.
            hits.retain(|_, q| q.back().is_some_and(|t| !expired(t)));
        }
        let q = hits.entry(key.to_string()).or_default();
        while q.front().is_some_and(expired) {
            q.pop_front();
        }
        if q.len() >= self.limit as usize {
            return false;
        }
        q.push_back(at);
        true
    }
}

fn webhook_not_found(id: &str) -> Error {
    Error::not_found("Webhook", id)
}

impl Engine {
    /// Checks a webhook's target in the caller's project: the alias exists, or the caller's
    /// own function (no admin bypass, as upstream) and its version exist.
    async fn check_webhook_target(
        &self,
        ctx: &RequestContext,
        target: &WebhookTarget,
    ) -> Result<(), Error> {
        if let Some(name) = &target.function_alias {
            self.get_alias(ctx, name).await?;
            return Ok(());
        }
        let Some(function_id) = &target.function_id else {
            return Err(Error::input(
                "Either function_alias or function_id must be provided.",
            ));
        };
        if let Some(v) = target.function_version
            && v < 0
        {
            return Err(Error::input(format!(
                "Invalid function_version {v}: it must be 0 (the function) or a version number."
            )));
        }
        let function = self
            .inner
            .store
            .get_function(function_id, &Scope::Project(ctx.project_id.clone()))
            .await?
            .ok_or_else(|| Error::not_found("Function", function_id))?;
        self.function_at_version(function, target.function_version.unwrap_or(0))
            .await?;
        Ok(())
    }

    pub async fn create_webhook(
        &self,
        ctx: &RequestContext,
        target: WebhookTarget,
        description: Option<String>,
    ) -> Result<Webhook, Error> {
        crate::text::check_description("description", description.as_deref())?;
        self.check_webhook_target(ctx, &target).await?;
        let alias = target.function_alias.is_some();
        let webhook = Webhook {
            id: new_id().into(),
            function_id: if alias { None } else { target.function_id },
            function_alias: target.function_alias,
            function_version: if alias { None } else { target.function_version },
            description,
            project_id: ctx.project_id.clone(),
            created_at: now(),
            updated_at: None,
        };
        self.inner.store.put_webhook(&webhook).await?;
        Ok(webhook)
    }

    pub async fn get_webhook(
        &self,
        ctx: &RequestContext,
        id: &WebhookId,
    ) -> Result<Webhook, Error> {
        self.inner
            .store
            .get_webhook(id, &scope::by_id(ctx))
            .await?
            .ok_or_else(|| webhook_not_found(id))
    }

    pub async fn list_webhooks(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
    ) -> Result<Vec<Webhook>, Error> {
        let scope = scope::for_list(ctx, q, OwnProject::Refused)?;
        Ok(self.inner.store.list_webhooks(&scope).await?)
    }

    pub async fn update_webhook(
        &self,
        ctx: &RequestContext,
        id: &WebhookId,
        req: UpdateWebhook,
    ) -> Result<Webhook, Error> {
        crate::text::check_description("description", req.description.as_deref())?;
        let mut webhook = self.get_webhook(ctx, id).await?;
        let t = req.target;
        if t.function_alias.is_some() {
            webhook.function_alias = t.function_alias;
            webhook.function_id = None;
            webhook.function_version = None;
        } else if t.function_id.is_some() || t.function_version.is_some() {
            webhook.function_alias = None;
            if let Some(f) = t.function_id {
                webhook.function_id = Some(f);
            }
            if let Some(v) = t.function_version {
                webhook.function_version = Some(v);
            }
        }
        if let Some(d) = req.description {
            webhook.description = Some(d);
        }
        // Validate in the owner's project, where the webhook runs.
        let owner = RequestContext {
            project_id: webhook.project_id.clone(),
            ..ctx.clone()
        };
        let target = WebhookTarget {
            function_id: webhook.function_id.clone(),
            function_version: webhook.function_version,
            function_alias: webhook.function_alias.clone(),
        };
        self.check_webhook_target(&owner, &target).await?;
        webhook.updated_at = Some(now());
        self.inner.store.put_webhook(&webhook).await?;
        Ok(webhook)
    }

    pub async fn delete_webhook(&self, ctx: &RequestContext, id: &WebhookId) -> Result<(), Error> {
        let webhook = self.get_webhook(ctx, id).await?;
        self.inner.store.delete_webhook(&webhook.id).await?;
        Ok(())
    }

    /// Invokes a webhook (no authentication): starts an async execution of its target in the
    /// owner's project with `params` as keyword arguments, and returns the execution id.
    /// `trace`: the caller's, which the execution joins.
    pub async fn invoke_webhook(
        &self,
        request_id: &str,
        id: &str,
        params: serde_json::Map<String, serde_json::Value>,
        trace: Option<qinling_types::trace::TraceParent>,
    ) -> Result<ExecutionId, Error> {
        let webhook = self
            .inner
            .store
            .get_webhook(id, &Scope::All)
            .await?
            .ok_or_else(|| webhook_not_found(id))?;
        let limit = self.inner.config.webhook_invocations_per_minute;
        if !self.inner.webhook_rate.allow(&webhook.id, Instant::now()) {
            return Err(Error::TooMany(format!(
                "Webhook {id} was invoked more than {limit} times in the last minute; retry later."
            )));
        }
        let owner = RequestContext {
            project_id: webhook.project_id.clone(),
            user_id: None,
            is_admin: false,
            request_id: request_id.to_string(),
        };
        let target = ExecutionTarget::named(
            webhook.function_alias.as_deref(),
            webhook.function_id.as_deref(),
            webhook.function_version.unwrap_or(0),
        )
        .ok_or_else(|| {
            Error::Conflict(format!(
                "Webhook {id} has no function or alias to run: update it."
            ))
        })?;
        let execution = self
            .create_execution(
                &owner,
                CreateExecution {
                    target,
                    description: Some(format!("Created by Webhook {}", webhook.id)),
                    sync: false,
                    input: Some(py_json(&serde_json::Value::Object(params))),
                    trace,
                },
            )
            .await?;
        Ok(execution.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_slides() {
        let rl = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(rl.allow("a", t0));
        assert!(rl.allow("a", t0 + Duration::from_secs(1)));
        assert!(
            !rl.allow("a", t0 + Duration::from_secs(2)),
            "third within a minute"
        );
        assert!(
            rl.allow("b", t0 + Duration::from_secs(2)),
            "limits are per webhook"
        );
        assert!(
            rl.allow("a", t0 + Duration::from_secs(60)),
            "the first hit slid out"
        );
        assert!(!rl.allow("a", t0 + Duration::from_secs(60)));
        let unlimited = RateLimiter::new(0, Duration::from_secs(60));
        assert!((0..1000).all(|_| unlimited.allow("a", t0)));
    }
}
