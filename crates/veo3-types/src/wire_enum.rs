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
    }

    #[test]
    fn unknown_values_are_kept_not_rejected() {
        let ratio: AspectRatio = serde_json::from_str("\"1:1\"").unwrap();
        assert_eq!(ratio, AspectRatio::Other("1:1".into()));
        assert_eq!(serde_json::to_string(&ratio).unwrap(), "\"1:1\"");
        assert_eq!(Resolution::from_wire("4K"), Resolution::K4);
        assert_eq!(AspectRatio::from_wire("auto"), AspectRatio::Auto);
    }
}
