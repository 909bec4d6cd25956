//! Estimated costs: a per-model price table.
//!
//! kie's answers do not report what a task cost, so a budget check needs a table. The default
//! is the mid-2026 price list quoted in the API notes (`../shared/veo3-api.md` §7, also what
//! the sandbox charges); users override it from a JSON file when kie's prices change.
//!
//! Prices are per 8 s clip, the only length the reference quotes prices for (§7: "Fast 8 s
//! ≈ 80 credits"). A shorter clip (`duration` 4 or 6) is estimated pro rata by seconds,
//! rounded up, as the sandbox charges; kie does not document how it bills shorter clips,
//! so `"prorate_duration": false` in the JSON estimates every clip at the 8 s price.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use veo3_types::{GenerateRequest, Model, Resolution, VideoDuration};

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
/// // A 4 s clip: half the 8 s price.
/// let short = GenerateRequest::builder("a cat").duration(veo3_types::VideoDuration::Seconds4).build()?;
/// assert_eq!(table.generation(&short), 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PriceTable {
    /// Generation price of an 8 s clip per model name (`veo3`, `veo3_fast`, `veo3_lite`) at
    /// 720p, 1080p, 4k.
    pub models: BTreeMap<String, [i64; 3]>,
    /// Whether a shorter clip (`duration` 4 or 6) costs its share of the 8 s price, rounded
    /// up (default); `false` prices every clip as 8 s.
    pub prorate_duration: bool,
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
            prorate_duration: true,
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
        table.prorate_duration = custom.prorate_duration;
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
        let clip = match self.models.get(model) {
            Some(prices) => prices[column],
            None => self.models.values().map(|p| p[column]).max().unwrap_or(0),
        };
        // An unknown length is never sent (validation refuses it); priced as 8 s anyway.
        let seconds = match request.duration {
            Some(duration @ (VideoDuration::Seconds4 | VideoDuration::Seconds6))
                if self.prorate_duration =>
            {
                duration.seconds()
            }
            _ => 8,
        };
        clip.saturating_mul(seconds).saturating_add(7) / 8
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_clips_are_priced_pro_rata_unless_turned_off() {
        let table = PriceTable::default();
        let request = |model: Model, duration: Option<VideoDuration>| {
            let mut builder = GenerateRequest::builder("p").model(model);
            if let Some(duration) = duration {
                builder = builder.duration(duration);
            }
            builder.build().expect("valid")
        };
        let rows = [
            (Model::Veo3Fast, None, 60),
            (Model::Veo3Fast, Some(VideoDuration::Seconds8), 60),
            (Model::Veo3Fast, Some(VideoDuration::Seconds6), 45),
            (Model::Veo3Fast, Some(VideoDuration::Seconds4), 30),
            (Model::Veo3, Some(VideoDuration::Seconds6), 188), // 187.5 rounded up
            (Model::Veo3Lite, Some(VideoDuration::Seconds4), 15),
        ];
        for (model, duration, cost) in rows {
            assert_eq!(
                table.generation(&request(model.clone(), duration)),
                cost,
                "{model} {duration:?}"
            );
        }
        let flat = PriceTable::from_json(r#"{"prorate_duration": false}"#).expect("json");
        assert_eq!(
            flat.generation(&request(Model::Veo3Fast, Some(VideoDuration::Seconds4))),
            60
        );
    }
}
