//! GS1 EPCIS 2.0 and the Core Business Vocabulary (CBV) 2.0 as rules, without I/O: what the
//! provenance domain accepts and how it names what it stores.
//!
//! - [`document`]: a capture document (an EPCIS document or query document) read and validated
//!   whole, each event's faults named by event and field;
//! - [`vocabulary`]: the CBV 2.0 standard vocabularies (business steps, dispositions, error
//!   reasons, …) in their three spellings;
//! - [`identifiers`]: EPC URIs and GS1 Digital Link URIs, with their check digits;
//! - [`event_hash`]: the CBV 2.0 canonical event hash (`ni:///sha-256;…?ver=CBV2.0`), which
//!   names an event that comes without an `eventID` and recognises the same event captured twice.

pub mod document;
pub mod event_hash;
pub mod identifiers;
pub mod vocabulary;
