//! What the model proxy allows: which models, and how much a session and an organisation may
//! spend; and what a request costs.

use std::collections::HashMap;

use proliferate_core::protocol::v1::{TokenUsage, UsageReport};
use serde::Deserialize;

/// A model's price in US dollars per million tokens (reasoning is billed as output).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens.
    pub input: f64,
    /// Output and reasoning tokens.
    pub output: f64,
    /// Tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read: f64,
    /// Tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write: f64,
}

/// A limit on tokens, on cost, or both.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    /// Tokens of every kind.
    pub tokens: Option<u64>,
    /// US dollars.
    pub cost: Option<f64>,
}

impl Budget {
    /// Why `spent` is over this budget, if it is. The reason carries no figures: agents
    /// retry errors whose text looks like a status code (a spend of `$0.5000` reads as `500`),
    /// and the usage routes tell the figures.
    fn exceeded_by(&self, spent: &UsageReport, whose: &str) -> Option<String> {
        let tokens_spent = self
            .tokens
            .is_some_and(|limit| spent.total.tokens() >= limit);
        let cost_spent =
            (self.cost).is_some_and(|limit| spent.total.cost.unwrap_or_default() >= limit);
        let what = match (tokens_spent, cost_spent) {
            (true, _) => "token",
            (false, true) => "cost",
            (false, false) => return None,
        };
        Some(format!(
            "the {whose} {what} budget is spent; its usage shows what was used"
        ))
    }
}

/// The proxy's policy.
#[derive(Debug, Clone, Default)]
pub struct ModelPolicy {
    /// Models (`provider/model`) sandboxes may use; empty for any configured provider's.
    pub allowed: Vec<String>,
    /// Prices by model.
    pub prices: HashMap<String, Price>,
    /// The most one session may spend.
    pub session: Budget,
    /// The most one organisation may spend.
    pub organization: Budget,
}

impl ModelPolicy {
    /// Whether any budget is set (if none, nothing spent needs reading).
    pub fn has_budget(&self) -> bool {
        [self.session, self.organization]
            .iter()
            .any(|budget| budget.tokens.is_some() || budget.cost.is_some())
    }

    /// Whether sandboxes may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|allowed| allowed == model)
    }

    /// What `usage` of `model` costs, if the model has a price.
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<f64> {
        let price = self.prices.get(model)?;
        let millions = |tokens: u64| tokens as f64 / 1_000_000.0;
        Some(
            millions(usage.input) * price.input
                + millions(usage.output + usage.reasoning) * price.output
                + millions(usage.cache_read) * price.cache_read
                + millions(usage.cache_write) * price.cache_write,
        )
    }

    /// Why a new request is refused, given what its session and organisation spent.
    pub fn refusal(&self, session: &UsageReport, organization: &UsageReport) -> Option<String> {
        self.session.exceeded_by(session, "session's").or_else(|| {
            self.organization
                .exceeded_by(organization, "organisation's")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spent(input: u64, output: u64, cost: Option<f64>) -> UsageReport {
        UsageReport {
            total: TokenUsage {
                input,
                output,
                cost,
                ..Default::default()
            },
            requests: 1,
            ..Default::default()
        }
    }

    #[test]
    fn budgets_refuse_once_spent_and_name_what_ran_out() {
        let policy = ModelPolicy {
            session: Budget {
                tokens: Some(100),
                cost: None,
            },
            organization: Budget {
                tokens: None,
                cost: Some(1.0),
            },
            ..Default::default()
        };
        let nothing = UsageReport::default();
        assert_eq!(policy.refusal(&spent(50, 49, None), &nothing), None);
        let refusal = policy.refusal(&spent(60, 40, None), &nothing).unwrap();
        assert!(refusal.contains("session's token budget"), "{refusal}");
        let refusal = policy.refusal(&nothing, &spent(1, 1, Some(1.5))).unwrap();
        assert!(refusal.contains("organisation's cost budget"), "{refusal}");
        assert!(
            !refusal.contains(|character: char| character.is_ascii_digit()),
            "no figure an agent could read as a retryable status: {refusal}"
        );
        assert_eq!(
            ModelPolicy::default().refusal(&spent(1 << 40, 0, Some(1e9)), &nothing),
            None
        );
    }

    #[test]
    fn cost_follows_the_price_and_allow_list_is_exact() {
        let policy = ModelPolicy {
            allowed: vec!["a/b".into()],
            prices: HashMap::from([(
                "a/b".to_owned(),
                Price {
                    input: 3.0,
                    output: 15.0,
                    cache_read: 0.3,
                    cache_write: 3.75,
                },
            )]),
            ..Default::default()
        };
        let usage = TokenUsage {
            input: 1_000_000,
            output: 100_000,
            reasoning: 100_000,
            cache_read: 1_000_000,
            cache_write: 0,
            cost: None,
        };
        let cost = policy.cost("a/b", &usage).unwrap();
        assert!((cost - (3.0 + 3.0 + 0.3)).abs() < 1e-9, "{cost}");
        assert_eq!(policy.cost("a/c", &usage), None);
        assert!(policy.allows("a/b") && !policy.allows("a/c") && !policy.allows("a/b2"));
        assert!(ModelPolicy::default().allows("anything/at-all"));
    }
}
