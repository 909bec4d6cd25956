//! String enums the server may extend: each keeps an `Other(String)` escape hatch so a value
//! added by kie tomorrow decodes today.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the crate does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(value) => value,
                }
            }

            /// Decodes a wire value; spelling variants seen in kie's docs are accepted
            /// case-insensitively, and anything else is kept as `Other`.
            pub fn from_wire(value: &str) -> Self {
                $(
                    if value.eq_ignore_ascii_case($wire) $(|| value.eq_ignore_ascii_case($alias))* {
                        return Self::$variant;
                    }
                )+
                Self::Other(value.to_owned())
            }

            /// Every variant this version knows, in documentation order.
            pub fn known() -> &'static [Self] {
                &[$( Self::$variant, )+]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from_wire(value))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Ok(Self::from_wire(&value))
            }
        }
    };
}

wire_enum! {
    /// The generation model (`model` on generate).
    ///
    /// ```
    /// use veo3_types::Model;
    /// assert_eq!(Model::from_wire("veo3_fast"), Model::Veo3Fast);
    /// assert_eq!(Model::from_wire("veo4"), Model::Other("veo4".into()));
    /// ```
    Model {
        /// `veo3`: Veo 3 Quality, slowest and most expensive.
        Veo3 => "veo3" | "quality",
        /// `veo3_fast`: Veo 3 Fast, the current default.
        Veo3Fast => "veo3_fast" | "fast",
        /// `veo3_lite`: Veo 3 Lite (2026 docs).
        Veo3Lite => "veo3_lite" | "lite",
    }
}

// The macro cannot take `#[default]`, so the impl is written out.
#[allow(clippy::derivable_impls)]
impl Default for Model {
    fn default() -> Self {
        Self::Veo3Fast
    }
}

wire_enum! {
    /// The extension model (`model` on extend); a different vocabulary from [`Model`].
    ExtendModel {
        /// `fast` (the default).
        Fast => "fast" | "veo3_fast",
        /// `quality`.
        Quality => "quality" | "veo3",
        /// `lite` (2026 docs).
        Lite => "lite" | "veo3_lite",
    }
}

wire_enum! {
    /// How the video is derived (`generationType`).
    GenerationType {
        /// `TEXT_2_VIDEO`: from the prompt alone, no images.
        TextToVideo => "TEXT_2_VIDEO",
        /// `FIRST_AND_LAST_FRAMES_2_VIDEO`: one image (the video unfolds around it) or two
        /// (first frame to last frame).
        FirstAndLastFrames => "FIRST_AND_LAST_FRAMES_2_VIDEO",
        /// `REFERENCE_2_VIDEO`: one to three reference images; Fast (and, per one page, Lite) only.
        Reference => "REFERENCE_2_VIDEO",
    }
}

impl GenerationType {
    /// The number of images this type accepts, inclusive, per the reference's table.
    pub fn image_range(&self) -> Option<(usize, usize)> {
        match self {
            Self::TextToVideo => Some((0, 0)),
            Self::FirstAndLastFrames => Some((1, 2)),
            Self::Reference => Some((1, 3)),
            Self::Other(_) => None,
        }
    }

    /// The type kie infers for a request with `images` images and no `generationType` (the
    /// reference: "if omitted, server infers from presence of `imageUrls`"): `TEXT_2_VIDEO`
    /// without images, `FIRST_AND_LAST_FRAMES_2_VIDEO` with any.
    pub fn inferred(images: usize) -> Self {
        if images == 0 {
            Self::TextToVideo
        } else {
            Self::FirstAndLastFrames
        }
    }
}

wire_enum! {
    /// Output aspect ratio (`aspect_ratio`, formerly `aspectRatio`).
    AspectRatio {
        /// `16:9`, the default.
        Landscape => "16:9",
        /// `9:16`.
        Portrait => "9:16",
        /// `Auto`: centre-crop to whichever of 16:9 / 9:16 is closer to the image.
        Auto => "Auto",
    }
}

wire_enum! {
    /// Video resolution (`resolution`).
    Resolution {
        /// `720p`, the default output.
        P720 => "720p",
        /// `1080p`.
        P1080 => "1080p" | "1080P",
        /// `4k`.
        K4 => "4k" | "4K",
    }
}

/// Clip length in seconds (`duration` on generate): 4, 6 or 8 (the server's default).
///
/// An integer on the wire, unlike the string enums above, with the same escape hatch: a value
/// this version does not know decodes as [`VideoDuration::Other`] (and
/// [`GenerateRequest::validate`](crate::GenerateRequest::validate) refuses to send one).
///
/// ```
/// use veo3_types::VideoDuration;
/// assert_eq!(VideoDuration::from_seconds(6), VideoDuration::Seconds6);
/// assert_eq!(VideoDuration::from_seconds(5), VideoDuration::Other(5));
/// assert_eq!(serde_json::to_string(&VideoDuration::Seconds4).unwrap(), "4");
/// assert_eq!("8".parse::<VideoDuration>(), Ok(VideoDuration::Seconds8));
/// assert!("8s".parse::<VideoDuration>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoDuration {
    /// 4 seconds.
    Seconds4,
    /// 6 seconds.
    Seconds6,
    /// 8 seconds, the server's default and the only length `REFERENCE_2_VIDEO` supports.
    #[default]
    Seconds8,
    /// A length this version does not know, kept verbatim.
    Other(i64),
}

impl VideoDuration {
    /// The seconds, as sent.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Seconds4 => 4,
            Self::Seconds6 => 6,
            Self::Seconds8 => 8,
            Self::Other(seconds) => seconds,
        }
    }

    /// Decodes a number of seconds; anything but 4, 6 or 8 is kept as `Other`.
    pub fn from_seconds(seconds: i64) -> Self {
        match seconds {
            4 => Self::Seconds4,
            6 => Self::Seconds6,
            8 => Self::Seconds8,
            other => Self::Other(other),
        }
    }

    /// Every length this version knows, shortest first.
    pub fn known() -> &'static [Self] {
        &[Self::Seconds4, Self::Seconds6, Self::Seconds8]
    }
}

impl fmt::Display for VideoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds())
    }
}

/// A duration that is not a whole number of seconds (`"8s"`, `"six"`, `"4.5"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationParseError {
    value: String,
}

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duration {:?} is not a whole number of seconds (4, 6 or 8)",
            self.value
        )
    }
}

impl std::error::Error for DurationParseError {}

impl FromStr for VideoDuration {
    type Err = DurationParseError;

    /// Whole seconds (`"4"`); a value outside 4, 6 and 8 parses as `Other`, for
    /// [`GenerateRequest::validate`](crate::GenerateRequest::validate) to refuse with the rule.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        value
            .trim()
            .parse::<i64>()
            .map(Self::from_seconds)
            .map_err(|_| DurationParseError {
                value: value.to_owned(),
            })
    }
}

impl Serialize for VideoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.seconds())
    }
}

impl<'de> Deserialize<'de> for VideoDuration {
    /// An integer, or (as for `index`) a numeric string.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        crate::tolerant::as_i64(&value)
            .map(Self::from_seconds)
            .ok_or_else(|| serde::de::Error::custom("duration must be an integer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_value_round_trips_through_the_wire() {
        for model in Model::known() {
            assert_eq!(&Model::from_wire(model.as_str()), model);
        }
        for ty in GenerationType::known() {
            assert_eq!(&GenerationType::from_wire(ty.as_str()), ty);
        }
        for ratio in AspectRatio::known() {
            assert_eq!(&AspectRatio::from_wire(ratio.as_str()), ratio);
        }
        for res in Resolution::known() {
            assert_eq!(&Resolution::from_wire(res.as_str()), res);
        }
        for model in ExtendModel::known() {
            assert_eq!(&ExtendModel::from_wire(model.as_str()), model);
        }
        for duration in VideoDuration::known() {
            let wire = serde_json::to_value(duration).unwrap();
            assert_eq!(
                &serde_json::from_value::<VideoDuration>(wire).unwrap(),
                duration
            );
        }
    }

    #[test]
    fn unknown_values_are_kept_not_rejected() {
        let ratio: AspectRatio = serde_json::from_str("\"1:1\"").unwrap();
        assert_eq!(ratio, AspectRatio::Other("1:1".into()));
        assert_eq!(serde_json::to_string(&ratio).unwrap(), "\"1:1\"");
        assert_eq!(Resolution::from_wire("4K"), Resolution::K4);
        assert_eq!(AspectRatio::from_wire("auto"), AspectRatio::Auto);
        let odd: VideoDuration = serde_json::from_str("10").unwrap();
        assert_eq!(odd, VideoDuration::Other(10));
        assert_eq!(serde_json::to_string(&odd).unwrap(), "10");
        assert_eq!(
            serde_json::from_str::<VideoDuration>("\"6\"").unwrap(),
            VideoDuration::Seconds6
        );
        assert!(serde_json::from_str::<VideoDuration>("true").is_err());
    }
}
