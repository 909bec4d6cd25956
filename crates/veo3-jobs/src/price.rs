//! Estimated costs: a per-model price table.
//!
//! kie's answers do not report what a task cost, so a budget check needs a table. The default
//! is the mid-2026 price list quoted in the API notes (`../shared/veo3-api.md` §7, also what
//! the sandbox charges); users override it from a JSON file when kie's prices change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use veo3_types::{GenerateRequest, Model, Resolution};

use crate::job::Upgrade;

/// Credits per operation.
///
/// ```
/// use veo3_jobs::PriceTable;
/// use veo3_types::{GenerateRequest, Model};
///
/// let table = PriceTable::default();
/// let request = GenerateRequest::builder("a cat").model(Model::Veo3Fast).build()?;
/// assert_eq!(table.generation(&request), 60);
/// let custom = PriceTable::from_json(r#"{"models": {"veo3_fast": [80, 85, 200]}}"#)?;
/// assert_eq!(custom.generation(&request), 80);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PriceTable {
    /// Generation price per model name (`veo3`, `veo3_fast`, `veo3_lite`) at 720p, 1080p, 4k.
    pub models: BTreeMap<String, [i64; 3]>,
    /// The 1080p follow-up.
    pub hd_1080p: i64,
    /// The 4K follow-up.
    pub upgrade_4k: i64,
}

impl Default for PriceTable {
    fn default() -> Self {
        let models = [
            ("veo3_lite", [30, 35, 150]),
            ("veo3_fast", [60, 65, 180]),
            ("veo3", [250, 255, 370]),
        ]
        .into_iter()
        .map(|(name, prices)| (name.to_owned(), prices))
        .collect();
        Self {
            models,
            hd_1080p: 5,
            upgrade_4k: 120,
        }
    }
}

impl PriceTable {
    /// Reads a table from JSON; models and fields it does not name keep their defaults.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        // `#[serde(default)]` fills what the file leaves out from `Default`; models it names
        // replace the default's entries, the others stay.
        let custom: Self = serde_json::from_str(json)?;
        let mut table = Self::default();
        table.models.extend(custom.models);
        table.hd_1080p = custom.hd_1080p;
        table.upgrade_4k = custom.upgrade_4k;
        Ok(table)
    }

    /// The price of the generation `request` describes. A model missing from the table costs
    /// the most expensive known model's price (an estimate must not be low).
    pub fn generation(&self, request: &GenerateRequest) -> i64 {
        let column = match request.resolution {
            Some(Resolution::P1080) => 1,
            Some(Resolution::K4) => 2,
            _ => 0,
        };
        let model = match &request.model {
            Model::Other(name) => name.as_str(),
            known => known.as_str(),
        };
        match self.models.get(model) {
            Some(prices) => prices[column],
            None => self.models.values().map(|p| p[column]).max().unwrap_or(0),
        }
    }

    /// The price of a follow-up.
    pub fn upgrade(&self, upgrade: Option<Upgrade>) -> i64 {
        match upgrade {
            Some(Upgrade::Hd1080p) => self.hd_1080p,
            Some(Upgrade::Uhd4k) => self.upgrade_4k,
            None => 0,
        }
    }

    /// A job's estimated cost: its generation and its follow-up.
    pub fn job(&self, request: &GenerateRequest, upgrade: Option<Upgrade>) -> i64 {
        self.generation(request)
            .saturating_add(self.upgrade(upgrade))
    }
}
