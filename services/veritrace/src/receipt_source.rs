//! A domain service's way to its events' receipts in the distributed mode: the anchor's
//! `GET /receipts/{event_id}` at `http.receipts_url`, with `http.receipts_api_key`.

use std::time::Duration;
use veritrace_kernel::receipts::ReceiptSource;

#[derive(Clone)]
pub struct AnchorOverHttp {
    base: String,
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl AnchorOverHttp {
    pub fn new(base: &str, api_key: Option<String>) -> AnchorOverHttp {
        AnchorOverHttp {
            base: base.trim_end_matches('/').to_owned(),
            api_key,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into(),
        }
    }

    fn fetch(&self, event_id: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}/receipts/{event_id}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut resp = request.call().map_err(|e| format!("{url}: {e}"))?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_vec()
                .map(Some)
                .map_err(|e| format!("{url}: {e}")),
            404 => Ok(None),
            401 | 403 => Err(format!(
                "{url} refused this service's key: http.receipts_api_key must be an auditor's key"
            )),
            status => Err(format!("{url} answered {status}")),
        }
    }
}

#[async_trait::async_trait]
impl ReceiptSource for AnchorOverHttp {
    async fn receipt(&self, event_id: &str) -> Result<Option<Vec<u8>>, String> {
        // ureq blocks: off the request's thread, bounded by its timeout.
        let (this, event_id) = (self.clone(), event_id.to_owned());
        tokio::task::spawn_blocking(move || this.fetch(&event_id))
            .await
            .map_err(|e| e.to_string())?
    }
}
