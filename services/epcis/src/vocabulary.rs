//! The CBV 2.0 standard vocabularies EPCIS events use — business steps, dispositions, error
//! reasons, business transaction types, source/destination types — and the GS1 Web Vocabulary
//! values of sensor reports (measurement types, alert types, components).
//!
//! A standard value may be written three ways, all the same value: the bare word (`shipping`,
//! the JSON-LD form), the CBV URN (`urn:epcglobal:cbv:bizstep:shipping`, the EPCIS 1.x form) or
//! the GS1 Web URI (`https://ref.gs1.org/cbv/BizStep-shipping`, or its compact form
//! `cbv:BizStep-shipping`, which the EPCIS JSON-LD context defines and protects). Any other
//! absolute URI is a user vocabulary value and is accepted as is; a bare word that is not a
//! standard value is refused, naming the vocabulary, and so is a URI in GS1's own namespace that
//! names no standard value (GS1 reserves it).
//!
//! The lists are those of the EPCIS 2.0 JSON-LD context and of GS1's JSON Schema (a test
//! compares them with the vendored copies); [`Vocabulary::key`] gives the bare word for
//! indexing, so a query `EQ_bizStep=shipping` finds an event captured with the URN.

use std::fmt;

use crate::identifiers::check_absolute_uri;

/// CBV 2.0 business steps (`bizStep`), alphabetical.
const BIZ_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

/// CBV 2.0 dispositions (`disposition`, `persistentDisposition`), alphabetical.
const DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_inferred",
    "completeness_verified",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_class",
    "mismatch_instance",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

/// CBV 2.0 error reasons (`errorDeclaration.reason`).
const ERROR_REASONS: &[&str] = &["did_not_occur", "incorrect_data"];

/// CBV 2.0 business transaction types (`bizTransactionList[].type`).
const BIZ_TRANSACTION_TYPES: &[&str] = &[
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

/// CBV 2.0 source/destination types (`sourceList[].type`, `destinationList[].type`).
const SOURCE_DESTINATION_TYPES: &[&str] = &["owning_party", "possessing_party", "location"];

/// GS1 Web Vocabulary measurement types (`sensorReport[].type`), as the EPCIS 2.0 context
/// lists them.
const MEASUREMENT_TYPES: &[&str] = &[
    "AbsoluteHumidity",
    "AbsorbedDose",
    "AbsorbedDoseRate",
    "Acceleration",
    "Altitude",
    "AmountOfSubstance",
    "AmountOfSubstancePerUnitVolume",
    "Angle",
    "AngularAcceleration",
    "AngularMomentum",
    "AngularVelocity",
    "Area",
    "Capacitance",
    "Conductance",
    "Conductivity",
    "Count",
    "Density",
    "Dimensionless",
    "DoseEquivalent",
    "DoseEquivalentRate",
    "DynamicViscosity",
    "ElectricCharge",
    "ElectricCurrent",
    "ElectricCurrentDensity",
    "ElectricFieldStrength",
    "Energy",
    "Exposure",
    "Force",
    "Frequency",
    "Illuminance",
    "Inductance",
    "Irradiance",
    "KinematicViscosity",
    "Length",
    "LinearMomentum",
    "Luminance",
    "LuminousFlux",
    "LuminousIntensity",
    "MagneticFlux",
    "MagneticFluxDensity",
    "MagneticVectorPotential",
    "Mass",
    "MassConcentration",
    "MassFlowRate",
    "MassPerAreaTime",
    "MemoryCapacity",
    "MolalityOfSolute",
    "MolarEnergy",
    "MolarMass",
    "MolarVolume",
    "Power",
    "Pressure",
    "RadiantFlux",
    "RadiantIntensity",
    "Radioactivity",
    "RelativeHumidity",
    "Resistance",
    "Resistivity",
    "SolidAngle",
    "SpecificVolume",
    "Speed",
    "SurfaceDensity",
    "SurfaceTension",
    "Temperature",
    "Time",
    "Torque",
    "Voltage",
    "Volume",
    "VolumeFlowRate",
    "VolumeFraction",
    "VolumetricFlux",
    "Wavenumber",
];

/// GS1 Web Vocabulary sensor alert types (`sensorReport[].exception`).
const SENSOR_ALERT_TYPES: &[&str] = &["ALARM_CONDITION", "ERROR_CONDITION"];

/// CBV 2.0 components of a sensor value (`sensorReport[].component`).
const COMPONENTS: &[&str] = &[
    "altitude",
    "axial_distance",
    "azimuth",
    "easting",
    "elevation_angle",
    "height",
    "latitude",
    "longitude",
    "northing",
    "polar_angle",
    "spherical_radius",
    "x",
    "y",
    "z",
];

/// The GS1 namespace of the CBV: a value written there must be a standard value. The draft
/// namespace `ns.gs1.org/cbv` is reserved too (GS1's schema refuses it as a user value).
const CBV_NAMESPACES: &[&str] = &[
    "urn:epcglobal:cbv:",
    "https://ref.gs1.org/cbv/",
    "http://ref.gs1.org/cbv/",
    "cbv:",
    "https://ns.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
];

/// The GS1 Web Vocabulary namespace (`gs1:` in the EPCIS context).
const GS1_VOC_NAMESPACES: &[&str] = &[
    "https://gs1.org/voc/",
    "http://gs1.org/voc/",
    "https://www.gs1.org/voc/",
    "http://www.gs1.org/voc/",
    "gs1:",
];

/// A standard vocabulary of EPCIS 2.0 / CBV 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vocabulary {
    BizStep,
    Disposition,
    ErrorReason,
    BizTransactionType,
    SourceDestinationType,
    MeasurementType,
    SensorAlertType,
    Component,
}

/// How a vocabulary's standard values are spelled besides the bare word.
struct Spellings {
    /// `urn:epcglobal:cbv:bizstep:` (none for the vocabularies CBV 2.0 introduced).
    urn_prefix: Option<&'static str>,
    /// The Web URI prefixes, the canonical one first, then the compact (`cbv:…`) one.
    web_prefixes: &'static [&'static str],
    /// The namespaces whose values must be standard values of this vocabulary.
    reserved_namespaces: &'static [&'static str],
}

impl Vocabulary {
    pub const ALL: [Vocabulary; 8] = [
        Vocabulary::BizStep,
        Vocabulary::Disposition,
        Vocabulary::ErrorReason,
        Vocabulary::BizTransactionType,
        Vocabulary::SourceDestinationType,
        Vocabulary::MeasurementType,
        Vocabulary::SensorAlertType,
        Vocabulary::Component,
    ];

    /// What the vocabulary names, in words.
    pub fn name(self) -> &'static str {
        match self {
            Vocabulary::BizStep => "business step",
            Vocabulary::Disposition => "disposition",
            Vocabulary::ErrorReason => "error reason",
            Vocabulary::BizTransactionType => "business transaction type",
            Vocabulary::SourceDestinationType => "source/destination type",
            Vocabulary::MeasurementType => "sensor measurement type",
            Vocabulary::SensorAlertType => "sensor alert type",
            Vocabulary::Component => "sensor value component",
        }
    }

    /// The standard that defines it: the CBV, or the GS1 Web Vocabulary for sensor
    /// measurement and alert types.
    pub fn defined_in(self) -> &'static str {
        match self {
            Vocabulary::MeasurementType | Vocabulary::SensorAlertType => "GS1 Web Vocabulary",
            _ => "CBV 2.0",
        }
    }

    /// The EPCIS member that holds it.
    pub fn member(self) -> &'static str {
        match self {
            Vocabulary::BizStep => "bizStep",
            Vocabulary::Disposition => "disposition",
            Vocabulary::ErrorReason => "reason",
            Vocabulary::BizTransactionType
            | Vocabulary::SourceDestinationType
            | Vocabulary::MeasurementType => "type",
            Vocabulary::SensorAlertType => "exception",
            Vocabulary::Component => "component",
        }
    }

    /// The standard values, as bare words.
    pub fn standard_values(self) -> &'static [&'static str] {
        match self {
            Vocabulary::BizStep => BIZ_STEPS,
            Vocabulary::Disposition => DISPOSITIONS,
            Vocabulary::ErrorReason => ERROR_REASONS,
            Vocabulary::BizTransactionType => BIZ_TRANSACTION_TYPES,
            Vocabulary::SourceDestinationType => SOURCE_DESTINATION_TYPES,
            Vocabulary::MeasurementType => MEASUREMENT_TYPES,
            Vocabulary::SensorAlertType => SENSOR_ALERT_TYPES,
            Vocabulary::Component => COMPONENTS,
        }
    }

    fn spellings(self) -> Spellings {
        let cbv = |urn_prefix, web_prefixes| Spellings {
            urn_prefix,
            web_prefixes,
            reserved_namespaces: CBV_NAMESPACES,
        };
        let gs1_voc = Spellings {
            urn_prefix: None,
            web_prefixes: GS1_VOC_NAMESPACES,
            reserved_namespaces: GS1_VOC_NAMESPACES,
        };
        match self {
            Vocabulary::BizStep => cbv(
                Some("urn:epcglobal:cbv:bizstep:"),
                &[
                    "https://ref.gs1.org/cbv/BizStep-",
                    "http://ref.gs1.org/cbv/BizStep-",
                    "cbv:BizStep-",
                ],
            ),
            Vocabulary::Disposition => cbv(
                Some("urn:epcglobal:cbv:disp:"),
                &[
                    "https://ref.gs1.org/cbv/Disp-",
                    "http://ref.gs1.org/cbv/Disp-",
                    "cbv:Disp-",
                ],
            ),
            Vocabulary::ErrorReason => cbv(
                Some("urn:epcglobal:cbv:er:"),
                &[
                    "https://ref.gs1.org/cbv/ER-",
                    "http://ref.gs1.org/cbv/ER-",
                    "cbv:ER-",
                ],
            ),
            Vocabulary::BizTransactionType => cbv(
                Some("urn:epcglobal:cbv:btt:"),
                &[
                    "https://ref.gs1.org/cbv/BTT-",
                    "http://ref.gs1.org/cbv/BTT-",
                    "cbv:BTT-",
                ],
            ),
            Vocabulary::SourceDestinationType => cbv(
                Some("urn:epcglobal:cbv:sdt:"),
                &[
                    "https://ref.gs1.org/cbv/SDT-",
                    "http://ref.gs1.org/cbv/SDT-",
                    "cbv:SDT-",
                ],
            ),
            Vocabulary::Component => cbv(
                None,
                &[
                    "https://ref.gs1.org/cbv/Comp-",
                    "http://ref.gs1.org/cbv/Comp-",
                    "cbv:Comp-",
                ],
            ),
            Vocabulary::MeasurementType | Vocabulary::SensorAlertType => gs1_voc,
        }
    }

    /// The CBV URN of a standard value (`urn:epcglobal:cbv:bizstep:shipping`), if the
    /// vocabulary has URNs and `word` is one of its values.
    pub fn urn(self, word: &str) -> Option<String> {
        let prefix = self.spellings().urn_prefix?;
        self.standard_word(word)
            .map(|word| format!("{prefix}{word}"))
    }

    /// The GS1 Web URI of a standard value (`https://ref.gs1.org/cbv/BizStep-shipping`).
    pub fn web_uri(self, word: &str) -> Option<String> {
        let prefix = self.spellings().web_prefixes.first()?;
        self.standard_word(word)
            .map(|word| format!("{prefix}{word}"))
    }

    fn standard_word(self, word: &str) -> Option<&'static str> {
        self.standard_values()
            .iter()
            .copied()
            .find(|value| *value == word)
    }

    /// Classifies `value`: a standard value in any of its spellings, or a user vocabulary
    /// value (any other absolute URI); refuses a bare word that is not standard and a URI in
    /// GS1's namespace that names no standard value.
    pub fn classify(self, value: &str) -> Result<VocabularyValue<'_>, VocabularyError> {
        if let Some(word) = self.standard_word(value) {
            return Ok(VocabularyValue::Standard(word));
        }
        let spellings = self.spellings();
        let prefixes = spellings.urn_prefix.iter().chain(spellings.web_prefixes);
        for prefix in prefixes {
            if let Some(word) = value.strip_prefix(prefix) {
                return self
                    .standard_word(word)
                    .map(VocabularyValue::Standard)
                    .ok_or_else(|| VocabularyError::NotStandard {
                        vocabulary: self,
                        value: value.to_owned(),
                    });
            }
        }
        let in_reserved_namespace = spellings
            .reserved_namespaces
            .iter()
            .any(|namespace| starts_with_ignore_case(value, namespace));
        if in_reserved_namespace {
            return Err(VocabularyError::ReservedNamespace {
                vocabulary: self,
                value: value.to_owned(),
            });
        }
        if check_absolute_uri(value).is_ok() {
            return Ok(VocabularyValue::User(value));
        }
        Err(VocabularyError::NotStandard {
            vocabulary: self,
            value: value.to_owned(),
        })
    }

    /// The value as indexed: the bare word of a standard value in any spelling; any other value
    /// unchanged.
    pub fn key(self, value: &str) -> String {
        match self.classify(value) {
            Ok(VocabularyValue::Standard(word)) => word.to_owned(),
            _ => value.to_owned(),
        }
    }
}

impl fmt::Display for Vocabulary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.name(), self.member())
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A value of a vocabulary, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VocabularyValue<'a> {
    /// A standard value, as its bare word.
    Standard(&'static str),
    /// A user vocabulary value: an absolute URI outside GS1's namespace, as written.
    User(&'a str),
}

/// Why a value is not one of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabularyError {
    #[error(
        "'{value}' is not a {} {vocabulary}: a standard value is one of {} (bare, or as its URN \
         or GS1 Web URI); a value of your own vocabulary is an absolute URI",
        .vocabulary.defined_in(),
        .vocabulary.standard_values().join(", ")
    )]
    NotStandard {
        vocabulary: Vocabulary,
        value: String,
    },
    #[error(
        "'{value}' is in GS1's namespace but is no spelling of a {} {vocabulary} (GS1 reserves \
         that namespace for its standard values; a value of your own vocabulary is an absolute \
         URI of your own)",
        .vocabulary.defined_in()
    )]
    ReservedNamespace {
        vocabulary: Vocabulary,
        value: String,
    },
}

/// The standard business steps, for `GET /bizSteps`.
pub fn standard_biz_steps() -> &'static [&'static str] {
    BIZ_STEPS
}

/// The standard dispositions, for `GET /dispositions`.
pub fn standard_dispositions() -> &'static [&'static str] {
    DISPOSITIONS
}

pub fn standard_error_reasons() -> &'static [&'static str] {
    ERROR_REASONS
}

pub fn standard_biz_transaction_types() -> &'static [&'static str] {
    BIZ_TRANSACTION_TYPES
}

pub fn standard_source_destination_types() -> &'static [&'static str] {
    SOURCE_DESTINATION_TYPES
}

pub fn standard_measurement_types() -> &'static [&'static str] {
    MEASUREMENT_TYPES
}

/// A business step as indexed: `urn:epcglobal:cbv:bizstep:shipping`,
/// `https://ref.gs1.org/cbv/BizStep-shipping` and `shipping` all give `shipping`; a user value
/// is kept as written.
pub fn biz_step_key(value: &str) -> String {
    Vocabulary::BizStep.key(value)
}

/// A disposition as indexed (see [`biz_step_key`]).
pub fn disposition_key(value: &str) -> String {
    Vocabulary::Disposition.key(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_of_a_standard_value_are_one_value() {
        for spelling in [
            "shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "cbv:BizStep-shipping",
        ] {
            assert_eq!(
                Vocabulary::BizStep.classify(spelling),
                Ok(VocabularyValue::Standard("shipping")),
                "{spelling}"
            );
            assert_eq!(biz_step_key(spelling), "shipping");
        }
        assert_eq!(
            disposition_key("urn:epcglobal:cbv:disp:in_transit"),
            "in_transit"
        );
        assert_eq!(
            Vocabulary::Component.classify("cbv:Comp-latitude"),
            Ok(VocabularyValue::Standard("latitude"))
        );
        assert_eq!(
            Vocabulary::MeasurementType.classify("https://gs1.org/voc/Temperature"),
            Ok(VocabularyValue::Standard("Temperature"))
        );
    }

    #[test]
    fn a_user_vocabulary_uri_is_accepted_and_kept() {
        let value = "http://epcis.example.org/hc/bizstep/summarising_discharge";
        assert_eq!(
            Vocabulary::BizStep.classify(value),
            Ok(VocabularyValue::User(value))
        );
        assert_eq!(biz_step_key(value), value);
        assert_eq!(
            Vocabulary::BizTransactionType.classify("urn:gs1:epcisapp:rail:btt:passage"),
            Ok(VocabularyValue::User("urn:gs1:epcisapp:rail:btt:passage"))
        );
    }

    #[test]
    fn a_bare_word_that_is_not_standard_is_refused_naming_the_vocabulary() {
        let error = Vocabulary::BizStep.classify("shiping").unwrap_err();
        assert!(matches!(error, VocabularyError::NotStandard { .. }));
        let message = error.to_string();
        assert!(message.contains("business step (bizStep)"), "{message}");
        assert!(message.contains("'shiping'"), "{message}");
        // A bare word of another vocabulary is not one of this one.
        assert!(Vocabulary::Disposition.classify("shipping").is_err());
        // Case matters: CBV words are lower case.
        assert!(Vocabulary::BizStep.classify("Shipping").is_err());
        // The key of a refused value is the value: a query for it finds nothing standard.
        assert_eq!(biz_step_key("shiping"), "shiping");
    }

    #[test]
    fn gs1_namespace_uris_must_name_standard_values() {
        for value in [
            "urn:epcglobal:cbv:bizstep:shipped",
            "https://ref.gs1.org/cbv/BizStep-shipped",
            // A disposition's URN is no business step.
            "urn:epcglobal:cbv:disp:in_transit",
            "https://ns.gs1.org/cbv/BizStep-shipping",
        ] {
            assert!(Vocabulary::BizStep.classify(value).is_err(), "{value}");
        }
        assert!(
            Vocabulary::MeasurementType
                .classify("https://gs1.org/voc/Temperatur")
                .is_err()
        );
    }

    #[test]
    fn urns_and_web_uris_are_spelled_as_cbv_defines_them() {
        assert_eq!(
            Vocabulary::Disposition.urn("in_transit").as_deref(),
            Some("urn:epcglobal:cbv:disp:in_transit")
        );
        assert_eq!(
            Vocabulary::BizTransactionType.web_uri("po").as_deref(),
            Some("https://ref.gs1.org/cbv/BTT-po")
        );
        assert_eq!(Vocabulary::Component.urn("x"), None);
        assert_eq!(Vocabulary::BizStep.urn("nonsense"), None);
    }

    #[test]
    fn the_lists_are_sorted_and_without_repeats() {
        for vocabulary in Vocabulary::ALL {
            let values = vocabulary.standard_values();
            let mut sorted = values.to_vec();
            sorted.sort_unstable_by_key(|value| value.to_ascii_lowercase());
            sorted.dedup();
            if vocabulary != Vocabulary::SourceDestinationType {
                assert_eq!(values, sorted.as_slice(), "{vocabulary}");
            }
        }
        assert_eq!(standard_biz_steps().len(), 41);
        assert_eq!(standard_dispositions().len(), 33);
    }
}
