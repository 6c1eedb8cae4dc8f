//! Case file endpoints: read only; case files are written by the reaction to evidence events.

use crate::CasesService;
use crate::domain::MAX_CASE_REFERENCE_CHARS;
use crate::projections::{self, CaseFilter, ExhibitView};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use veritrace_kernel::auth::Caller;
use veritrace_kernel::http::{ReceiptLinks, ValidQuery};
use veritrace_kernel::strict_json::check_text_field;
use veritrace_kernel::{ApiError, FieldError, resource};

/// Most exhibits one answer lists.
pub const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 500;

/// A court case's file: the exhibits the caller may read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseFile {
    pub case_reference: String,
    /// Newest registration first; withdrawn exhibits stay, marked `withdrawn`.
    pub exhibits: Vec<ExhibitView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseFileQuery {
    /// At most this many exhibits (1-1000, default 500), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A court case's file: its exhibits across organisations.
///
/// Every evidence registration that names the case is an exhibit, newest first, with the
/// receipts of its filing and of its registration; a withdrawn one stays, marked `withdrawn`.
/// An organisation reads the exhibits it registered and those shared with it; a court reads
/// every exhibit; the admin and auditors read all. A case with no exhibit the caller may read
/// is a 404, exactly as an unknown case.
#[utoipa::path(
    get, path = "/cases/{case_reference}", tag = "cases",
    params(
        ("case_reference" = String, Path,
            description = "The case, as registrations name it (`case_reference`), 1 to 100 characters",
            min_length = 1, max_length = 100,
            pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"),
        CaseFileQuery,
    ),
    responses(
        (status = 200, body = CaseFile),
        (status = 401, body = veritrace_kernel::Problem),
        (status = 404, body = veritrace_kernel::Problem, description = "No exhibit of this case the caller may read"),
        (status = 422, body = veritrace_kernel::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn case_file(
    svc: web::Data<CasesService>,
    links: ReceiptLinks,
    caller: Caller,
    path: web::Path<String>,
    ValidQuery(q): ValidQuery<CaseFileQuery>,
) -> Result<HttpResponse, ApiError> {
    let case_reference = path.into_inner();
    let mut errors = Vec::new();
    if let Err(message) = check_text_field(&case_reference, MAX_CASE_REFERENCE_CHARS) {
        errors.push(FieldError::new("case_reference", message));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = CaseFilter {
        case_reference: case_reference.clone(),
        readable_by: caller.reads_as(),
        limit,
    };
    let exhibits: Vec<ExhibitView> = projections::exhibits(svc.read_model(), filter)
        .await?
        .into_iter()
        // The query selected by reader already; the kernel's own rule decides all the same.
        .filter(|x| caller.may_read(&x.readers))
        .map(|x| x.view(&links))
        .collect();
    if exhibits.is_empty() {
        return Err(ApiError::NotFound(format!("no case {case_reference}")));
    }
    Ok(HttpResponse::Ok().json(CaseFile {
        case_reference,
        exhibits,
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/cases/{case_reference}", get => case_file));
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(case_file))]
pub struct CasesApi;
