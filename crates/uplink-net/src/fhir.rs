//! The FHIR uplink: transaction Bundles over HTTP/1.1 (+TLS) on one keep-alive connection
//! (a route with more `connections` has one uplink per connection).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hearth_model::{Record, RecordId};
use hearth_tls::TlsFiles;
use hearth_uplink::{BoxFuture, Claimed, Failure, Outcome, Uplink, UplinkError, redact_for_log};
use hearth_uplink_fhir::{
    Blame, Context, EntryOutcome, EntryRole, Profile, ResponseError, blame_of_status,
    encode_bundle, parse_transaction_response,
};
use hyper::body::Bytes;

use crate::SetupError;
use crate::auth::{Auth, TokenClient};
use crate::http::{HttpClient, HttpError, Response, Target, parse_url};
use crate::net::Dialer;

/// Settings of one FHIR route.
#[derive(Debug, Clone)]
pub struct FhirSettings {
    /// The FHIR base URL (`https://host[:port]/path`); the transaction is POSTed to it.
    pub base_url: String,
    /// CA file and client certificate (mutual TLS); unused for `http://` URLs.
    pub tls: TlsFiles,
    /// Longest wait for connecting, and for the answer of one request.
    pub timeout: Duration,
    /// The receiver's profile (`phd`, `vkp` or `pmd`).
    pub profile: Profile,
    /// The encoder's context (gateway, patient, device facts, what to do with alarms).
    pub context: Context,
    /// How requests are authorised.
    pub auth: Auth,
}

enum AuthState {
    None,
    Bearer(String),
    OAuth(Box<TokenClient>),
}

/// Sends batches as FHIR transaction Bundles; see the crate docs and `UPLINKS.md`.
pub struct FhirUplink {
    base_url: String,
    target: Target,
    http: HttpClient,
    profile: Profile,
    context: Context,
    auth: AuthState,
    /// Readings the encoder leaves out as unsupported (no mapping in the profile, not an
    /// Observation) are [`Outcome::Skipped`] instead of [`Outcome::Rejected`].
    skip_unsupported: bool,
    /// Device facts as the drivers report them (shared with `Ingest`), read before encoding.
    devices: Option<hearth_model::DeviceRegistry>,
}

/// What one request for a group of records ended in.
enum Sent {
    /// Every record of the group has its outcome.
    Done,
    /// The receiver refused the whole transaction because of this record (batch index).
    RefusedBecauseOf(usize, String),
    /// The receiver refused the whole transaction and named no (Observation) entry.
    RefusedUnlocated(String),
}

impl FhirUplink {
    /// Check the settings and set up TLS and auth; connects on the first delivery.
    pub fn new(settings: FhirSettings) -> Result<Self, SetupError> {
        let target = parse_url(&settings.base_url).map_err(|message| SetupError::Address {
            key: "fhir.url".into(),
            message,
        })?;
        let tls = if target.https {
            let mut cfg = crate::tls_config(&settings.tls, "fhir")?;
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(cfg))
        } else {
            None
        };
        let dialer =
            Dialer::new(&target.host, target.port, tls, &target.host).map_err(|message| {
                SetupError::Address {
                    key: "fhir.url".into(),
                    message,
                }
            })?;
        let auth = match settings.auth {
            Auth::None => AuthState::None,
            Auth::Bearer(t) => {
                if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(SetupError::Auth {
                        key: "fhir.auth.token".into(),
                        message: "the bearer token is empty or contains white space".into(),
                    });
                }
                AuthState::Bearer(t)
            }
            Auth::OAuth2ClientCredentials(o) => AuthState::OAuth(Box::new(TokenClient::new(
                o,
                &settings.tls,
                settings.timeout,
            )?)),
        };
        Ok(Self {
            http: HttpClient::new(dialer, target.authority.clone(), settings.timeout),
            base_url: settings.base_url,
            target,
            profile: settings.profile,
            context: settings.context,
            auth,
            skip_unsupported: false,
            devices: None,
        })
    }

    /// Read device facts (PhdDevice manufacturer, model, serial, firmware, EUI-64) from this
    /// shared registry before each encoding; they override the context's own entries. The
    /// daemon shares it with `Ingest`, which updates it after the facts are stored.
    pub fn with_device_registry(mut self, devices: hearth_model::DeviceRegistry) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Copy the registry's facts about the devices of these records into the context: once per
    /// device of the batch (a batch holds hundreds of readings of a few devices, and each look-up
    /// takes the registry's lock and copies the facts).
    fn refresh_devices<'a>(&mut self, records: impl Iterator<Item = &'a Record>) {
        let Some(registry) = &self.devices else {
            return;
        };
        let mut seen = std::collections::BTreeSet::new();
        for r in records {
            let Record::Reading(r) = r else { continue };
            if !seen.insert(&r.device) {
                continue;
            }
            if let Some(facts) = registry.get(&r.device)
                && self.context.devices.get(&r.device) != Some(&facts)
            {
                self.context.devices.insert(r.device.clone(), facts);
            }
        }
    }

    /// Settle readings the route cannot carry (the encoder's `Bundle::skipped`: no mapping in
    /// the profile, not an Observation) as skipped, counted as `skipped:<route>`, instead of
    /// dead-lettering them (the default; route key `unsupported = "skip"`).
    pub fn skip_unsupported(mut self, skip: bool) -> Self {
        self.skip_unsupported = skip;
        self
    }

    /// TCP connections opened to the FHIR server so far.
    pub fn connections_opened(&self) -> u64 {
        self.http.connections_opened()
    }

    /// OAuth2 access tokens fetched so far (0 without OAuth2).
    pub fn tokens_fetched(&self) -> u64 {
        match &self.auth {
            AuthState::OAuth(t) => t.tokens_fetched(),
            _ => 0,
        }
    }

    async fn post(&mut self, body: Bytes) -> Result<Response, UplinkError> {
        for attempt in 0..2 {
            let mut headers = vec![
                ("content-type", "application/fhir+json".to_owned()),
                ("accept", "application/fhir+json".to_owned()),
                ("prefer", "return=minimal".to_owned()),
            ];
            match &mut self.auth {
                AuthState::None => {}
                AuthState::Bearer(t) => headers.push(("authorization", format!("Bearer {t}"))),
                AuthState::OAuth(c) => {
                    let token = c.token().await.map_err(UplinkError::new)?;
                    headers.push(("authorization", format!("Bearer {token}")));
                }
            }
            let resp = self
                .http
                .post(&self.target.path, &headers, body.clone())
                .await
                .map_err(|e| match e {
                    HttpError::Timeout(m) | HttpError::Failed(m) => {
                        UplinkError::new(format!("FHIR {}: {m}", self.base_url))
                    }
                })?;
            if resp.status == 401 {
                if let (AuthState::OAuth(c), 0) = (&mut self.auth, attempt) {
                    tracing::info!("FHIR receiver answered 401; fetching a new access token");
                    c.invalidate();
                    continue;
                }
                // Every record would be refused alike: pause the route, keep the records.
                return Err(UplinkError::route_refused(format!(
                    "FHIR {} answered 401 Unauthorized; check the route's auth settings (token, \
                     client id, key) and the client certificate",
                    self.base_url
                )));
            }
            return Ok(resp);
        }
        Err(UplinkError::route_refused(format!(
            "FHIR {} refused a freshly fetched access token (401 twice); check the scope and \
             the receiver's trust in the identity service",
            self.base_url
        )))
    }

    /// Encode and send the records at `indices` (batch positions) as one transaction; fill in
    /// `out` for every record that got its answer.
    async fn send_group(
        &mut self,
        batch: &[Claimed],
        indices: &[usize],
        out: &mut [Option<Outcome>],
    ) -> Result<Sent, UplinkError> {
        let mut idx = indices.to_vec();
        self.refresh_devices(idx.iter().map(|&i| &batch[i].record));
        let bundle = loop {
            if idx.is_empty() {
                return Ok(Sent::Done);
            }
            let records: Vec<&Record> = idx.iter().map(|&i| &batch[i].record).collect();
            match encode_bundle(&records, &self.context, self.profile) {
                Ok(b) => break b,
                Err(e) => match e.record() {
                    Some((pos, _)) if pos < idx.len() => {
                        // Not final yet (a later failure of the batch keeps it): the sender
                        // logs the dead letter once it is settled.
                        tracing::debug!(record = %batch[idx[pos]].record.id(), error = %e, "FHIR encoder refused a record; encoding the rest without it");
                        out[idx[pos]] = Some(Outcome::Rejected {
                            reason: e.to_string(),
                        });
                        idx.remove(pos);
                    }
                    _ => {
                        return Err(UplinkError::new(format!("FHIR route cannot encode: {e}")));
                    }
                },
            }
        };
        for s in bundle.skipped() {
            if let Some(&i) = idx.get(s.index) {
                let reason = s.reason.clone();
                out[i] = Some(if self.skip_unsupported {
                    Outcome::Skipped { reason }
                } else {
                    Outcome::Rejected { reason }
                });
            }
        }
        if bundle.is_empty() {
            return Ok(Sent::Done);
        }
        let by_id: HashMap<RecordId, usize> =
            idx.iter().map(|&i| (batch[i].record.id(), i)).collect();
        let resp = self.post(Bytes::from(bundle.to_json_bytes())).await?;
        let status = resp.status;
        let busy = status >= 500 || status == 408 || status == 429;
        let parsed = parse_transaction_response(&resp.body, bundle.len());
        if busy {
            let detail = match &parsed {
                Err(ResponseError::OperationOutcome { diagnostics, .. }) => {
                    format!(": {diagnostics}")
                }
                _ => String::new(),
            };
            return Err(UplinkError {
                message: format!(
                    "FHIR {} answered HTTP {status}{detail}; retrying the batch",
                    self.base_url
                ),
                retry_after: resp.retry_after(),
                failure: Failure::Unavailable,
            });
        }
        if blame_of_status(status) == Some(Blame::Route) {
            let detail = match &parsed {
                Err(
                    ResponseError::OperationOutcome { diagnostics, .. }
                    | ResponseError::RouteRefused { diagnostics },
                ) => format!(": {diagnostics}"),
                _ => String::new(),
            };
            return Err(UplinkError::route_refused(format!(
                "FHIR {} answered HTTP {status}{detail}; check the route's auth settings and \
                 the rights the server gives this gateway",
                self.base_url
            )));
        }
        match parsed {
            Ok(entries) => {
                let Some(pairs) = bundle.record_outcomes(&entries) else {
                    self.http.reset();
                    return Err(UplinkError::new(format!(
                        "FHIR {}: answer does not fit the request",
                        self.base_url
                    )));
                };
                // One Observation refused because of the route means all of them would be.
                if let Some((_, EntryOutcome::RouteRefused { status, reason })) = pairs
                    .iter()
                    .find(|(_, e)| matches!(e, EntryOutcome::RouteRefused { .. }))
                {
                    return Err(UplinkError::route_refused(format!(
                        "FHIR {} refused an Observation because of the route (entry {status}): \
                         {reason}; check the route's patient, organization and profile",
                        self.base_url
                    )));
                }
                for (role, e) in bundle.entries().iter().zip(&entries) {
                    if !matches!(role, EntryRole::Observation(_)) {
                        if let EntryOutcome::Rejected { status, reason }
                        | EntryOutcome::RouteRefused { status, reason }
                        | EntryOutcome::Retry { status, reason } = e
                        {
                            tracing::warn!(status, reason = %redact_for_log(reason), "FHIR receiver did not store a Device entry");
                        }
                    }
                }
                for (id, e) in pairs {
                    let Some(&i) = by_id.get(&id) else { continue };
                    out[i] = Some(match e {
                        EntryOutcome::Delivered { .. } => Outcome::Delivered,
                        EntryOutcome::Retry { status, reason } => {
                            tracing::info!(record = %id, status, reason = %redact_for_log(&reason), "FHIR receiver asks to retry a record");
                            Outcome::Retry { not_before: None }
                        }
                        EntryOutcome::Rejected { status, reason }
                        | EntryOutcome::RouteRefused { status, reason } => Outcome::Rejected {
                            reason: format!("FHIR receiver answered {status}: {reason}"),
                        },
                    });
                }
                Ok(Sent::Done)
            }
            Err(ResponseError::RouteRefused { diagnostics }) if (400..500).contains(&status) => {
                Err(UplinkError::route_refused(format!(
                    "FHIR {} refused the transaction because of the route (HTTP {status}): \
                     {diagnostics}; check the route's patient, organization and profile",
                    self.base_url
                )))
            }
            Err(ResponseError::OperationOutcome {
                diagnostics,
                transient,
                entry,
            }) if (400..500).contains(&status) && !transient => {
                let reason = format!("FHIR receiver refused it (HTTP {status}): {diagnostics}");
                match entry.and_then(|n| bundle.entries().get(n)) {
                    Some(EntryRole::Observation(id)) => match by_id.get(id) {
                        Some(&i) => Ok(Sent::RefusedBecauseOf(i, reason)),
                        None => Ok(Sent::RefusedUnlocated(reason)),
                    },
                    _ => Ok(Sent::RefusedUnlocated(reason)),
                }
            }
            Err(e) => {
                self.http.reset();
                Err(UplinkError {
                    message: format!(
                        "FHIR {} answered HTTP {status} that hearth cannot use ({e}); retrying \
                         the batch",
                        self.base_url
                    ),
                    retry_after: resp.retry_after(),
                    failure: Failure::Unavailable,
                })
            }
        }
    }

    async fn deliver_batch(&mut self, batch: &[Claimed]) -> Result<Vec<Outcome>, UplinkError> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        // A whole-transaction refusal that names its entry: dead-letter that one, send the rest.
        while !pending.is_empty() {
            pending.retain(|&p| out[p].is_none());
            if pending.is_empty() {
                break;
            }
            match self.send_group(batch, &pending, &mut out).await? {
                Sent::Done => {
                    pending.clear();
                }
                Sent::RefusedBecauseOf(i, reason) => {
                    tracing::debug!(record = %batch[i].record.id(), reason = %redact_for_log(&reason), "FHIR receiver refused the transaction because of one record; sending the rest without it");
                    out[i] = Some(Outcome::Rejected { reason });
                    pending.retain(|&p| p != i);
                }
                Sent::RefusedUnlocated(reason) => {
                    if let [only] = pending[..] {
                        out[only] = Some(Outcome::Rejected { reason });
                        pending.clear();
                        continue;
                    }
                    // No entry named: one record per request finds the refused ones.
                    tracing::warn!(records = pending.len(), reason = %redact_for_log(&reason), "FHIR receiver refused the transaction without naming an entry; sending the records one by one");
                    for i in std::mem::take(&mut pending) {
                        if out[i].is_some() {
                            continue;
                        }
                        match self.send_group(batch, &[i], &mut out).await? {
                            Sent::Done => {}
                            Sent::RefusedBecauseOf(_, reason) | Sent::RefusedUnlocated(reason) => {
                                out[i] = Some(Outcome::Rejected { reason });
                            }
                        }
                    }
                }
            }
        }
        // Every record has an outcome by construction; a gap would be a bug, so retry it.
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Retry { not_before: None }))
            .collect())
    }
}

impl Uplink for FhirUplink {
    fn describe(&self) -> String {
        format!("fhir {}", self.base_url)
    }

    fn deliver<'a>(
        &'a mut self,
        batch: &'a [Claimed],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, UplinkError>> {
        Box::pin(self.deliver_batch(batch))
    }
}
