//! The processor: one task per MQTT source that turns link events into commits and acks.

use std::time::Duration;

use hearth_config::MqttConfig;
use hearth_driver_api::{BoxFuture, Driver, DriverContext, DriverError};
use hearth_model::{Severity, TechnicalKind, Timestamp};
use tokio::sync::mpsc;

use crate::ledger::{Ledger, Verdict, content_hash};
use crate::session::{self, AckCmd, Filters, LinkEvent};
use crate::{Handler, Incoming, simulated, subscriptions};

/// Where the messages come from.
#[derive(Debug, Clone)]
pub enum Transport {
    /// The broker of `[mqtt]`.
    Broker(MqttConfig),
    /// Scripted messages (offset, topic, payload), replayed every `period` if given.
    Simulated {
        /// The script.
        script: Vec<(Duration, String, String)>,
        /// Replay period.
        period: Option<Duration>,
    },
}

/// One committed batch, for observers (benchmarks, the demo).
#[derive(Debug, Clone)]
pub struct CommittedBatch {
    /// When the commit was requested.
    pub requested: std::time::Instant,
    /// When the commit returned.
    pub at: std::time::Instant,
    /// Topics of the stored messages, in arrival order, with when each arrived.
    pub topics: Vec<(String, std::time::Instant)>,
    /// Records stored.
    pub records: usize,
}

/// Receives every committed batch.
pub type CommitObserver = mpsc::UnboundedSender<CommittedBatch>;

/// Most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// An MQTT source: a transport, a handler and the commit-then-ack loop.
pub struct MqttSource {
    name: String,
    transport: Transport,
    handler: Box<dyn Handler>,
    max_pending: usize,
    reconnect: (Duration, Duration),
    observer: Option<CommitObserver>,
}

impl std::fmt::Debug for MqttSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MqttSource {
    /// A source named `name` (config `[[source]] name`).
    pub fn new(name: &str, transport: Transport, handler: Box<dyn Handler>) -> Self {
        let (max_pending, reconnect) = match &transport {
            Transport::Broker(c) => (
                usize::try_from(c.max_pending).unwrap_or(1000),
                (c.reconnect_initial.get(), c.reconnect_max.get()),
            ),
            Transport::Simulated { .. } => (256, (Duration::from_secs(1), Duration::from_secs(1))),
        };
        MqttSource {
            name: name.to_owned(),
            transport,
            handler,
            max_pending,
            reconnect,
            observer: None,
        }
    }

    /// Report every committed batch to `observer`.
    pub fn observe(mut self, observer: CommitObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    async fn run_session(&mut self, ctx: &DriverContext) -> Result<(), DriverError> {
        let state = ctx.ingest.cursors(&self.handler.state_prefix()).await?;
        self.handler.restore(state);
        let seq = ctx
            .ingest
            .cursor(&Ledger::seq_key(&self.name))
            .await?
            .unwrap_or(0);
        let journal = ctx.ingest.journal(&Ledger::journal_key(&self.name)).await?;
        let mut ledger = Ledger::new(&self.name, u64::try_from(seq).unwrap_or(0), &journal);
        let (mut rx, acks, tasks) = match &self.transport {
            Transport::Broker(cfg) => {
                let options = session::options(cfg, &self.name)
                    .map_err(|e| DriverError::Config(e.to_string()))?;
                let recorded = ctx
                    .ingest
                    .journal(&subscriptions::journal_key(&self.name))
                    .await?;
                let filters = Filters {
                    configured: self.handler.subscriptions(),
                    recorded: subscriptions::decode(&recorded),
                };
                tracing::info!(source = %self.name, host = %cfg.host, port = cfg.port, "connecting to the MQTT broker");
                session::start(options, filters, self.reconnect, self.max_pending)
            }
            Transport::Simulated { script, period } => simulated::start(script.clone(), *period),
        };
        let _abort = AbortOnDrop(tasks);
        let broker = match &self.transport {
            Transport::Broker(c) => format!("{}:{}", c.host, c.port),
            Transport::Simulated { .. } => "simulated".into(),
        };
        let alarm_source = format!("mqtt:{}", self.name);
        // Commits run in their own task, one after another, while the next batch is handled:
        // handling (CPU) and committing (SQLite) overlap. The channel holds one batch, so at
        // most two batches are between arrival and acknowledgement.
        let (commit_tx, commit_rx) = mpsc::channel::<Commit>(1);
        let committer = tokio::spawn(committer(
            ctx.ingest.clone(),
            self.name.clone(),
            commit_rx,
            acks.clone(),
            self.observer.clone(),
        ));
        let result = self
            .event_loop(
                &mut rx,
                &mut ledger,
                ctx,
                &commit_tx,
                &alarm_source,
                &broker,
            )
            .await;
        // Let the committer finish what it has (so its acks go out), then report the first
        // failure of the two.
        drop(commit_tx);
        let committed = match committer.await {
            Ok(r) => r,
            Err(e) => Err(DriverError::Link(format!(
                "the MQTT committer task failed: {e}"
            ))),
        };
        result.and(committed)
    }

    async fn event_loop(
        &mut self,
        rx: &mut mpsc::Receiver<LinkEvent>,
        ledger: &mut Ledger,
        ctx: &DriverContext,
        commit_tx: &mpsc::Sender<Commit>,
        alarm_source: &str,
        broker: &str,
    ) -> Result<(), DriverError> {
        loop {
            let deadline = self.handler.next_deadline();
            let timer = async {
                match deadline {
                    Some(at) => {
                        let wait = at
                            .unix_millis()
                            .saturating_sub(Timestamp::now().unix_millis());
                        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
                            .await;
                    }
                    None => std::future::pending().await,
                }
            };
            let mut commits = Vec::new();
            tokio::select! {
                biased;
                () = ctx.stopping() => return Ok(()),
                // The committer stopped on an error (storage failing): return now, so that
                // `run_session` reports it and the supervisor restarts the source, which gets
                // the unacknowledged messages again. Waiting for the next message instead would
                // leave the failed batch in the broker until one arrives.
                () = commit_tx.closed() => return Ok(()),
                ev = rx.recv() => match ev {
                    None => return Err(DriverError::Link(format!(
                        "the MQTT session of source {} ended", self.name
                    ))),
                    Some(LinkEvent::Message(m)) => {
                        let mut batch = vec![m];
                        let mut link = Vec::new();
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(LinkEvent::Message(m)) => batch.push(m),
                                Ok(other) => {
                                    link.push(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        commits.push(self.handle_batch(batch, ledger));
                        for ev in link {
                            commits.extend(self.link_event(ev, ctx, alarm_source, broker).await?);
                        }
                    }
                    Some(other) => {
                        commits.extend(self.link_event(other, ctx, alarm_source, broker).await?);
                    }
                },
                () = timer => {
                    let h = self.handler.tick(Timestamp::now());
                    if !h.records.is_empty() || !h.state.is_empty() {
                        commits.push(Commit {
                            records: h.records,
                            cursors: h.state,
                            ..Commit::default()
                        });
                    }
                }
            }
            for c in commits {
                if commit_tx.send(c).await.is_err() {
                    // The committer stopped on an error; `run_session` reports it.
                    return Ok(());
                }
            }
        }
    }

    /// Reports a link event; a confirmed subscription set becomes a commit of its record.
    async fn link_event(
        &self,
        ev: LinkEvent,
        ctx: &DriverContext,
        alarm_source: &str,
        broker: &str,
    ) -> Result<Option<Commit>, DriverError> {
        match ev {
            LinkEvent::Subscribed(filters) => {
                tracing::info!(source = %self.name, filters = ?filters, "MQTT subscriptions confirmed by the broker");
                return Ok(Some(self.subscriptions_record(&filters)));
            }
            LinkEvent::Connected { session_present } => {
                tracing::info!(source = %self.name, session_present, "MQTT connected");
                ctx.technical
                    .clear(
                        alarm_source,
                        TechnicalKind::DeviceOffline,
                        "MQTT broker reachable again",
                    )
                    .await?;
            }
            LinkEvent::Lost(e) => {
                tracing::warn!(source = %self.name, error = %e, "MQTT connection lost; reconnecting");
                ctx.technical
                    .raise(
                        alarm_source,
                        TechnicalKind::DeviceOffline,
                        Severity::Major,
                        format!(
                            "MQTT broker {broker} unreachable ({e}); sensor messages wait in the \
                             broker's session; check that the broker runs (systemctl status \
                             mosquitto)"
                        ),
                    )
                    .await?;
            }
            LinkEvent::Message(_) => {}
        }
        Ok(None)
    }

    /// The commit that records the broker's subscriptions of this source: one journal entry,
    /// replaced each time (same position, nothing older kept).
    fn subscriptions_record(&self, filters: &[String]) -> Commit {
        Commit {
            journal: Some(hearth_driver_api::JournalEntry {
                source: subscriptions::journal_key(&self.name),
                seq: 0,
                entries: subscriptions::encode(filters),
                keep_from: 0,
            }),
            ..Commit::default()
        }
    }

    /// Turn a batch into one commit: records, handler state, ledger entries, the sequence
    /// number, dead letters, and the acknowledgements to send after it, in arrival order.
    fn handle_batch(&mut self, batch: Vec<Incoming>, ledger: &mut Ledger) -> Commit {
        let now = Timestamp::now();
        let mut c = Commit::default();
        let mut ack_only = 0usize;
        for m in batch {
            let hash = content_hash(&m.topic, &m.payload);
            match ledger.admit(m.dup, m.pkid, hash) {
                Verdict::AckOnly => ack_only += 1,
                Verdict::Store(seq) => {
                    let h = self.handler.handle(&m, seq, now);
                    c.records.extend(h.records);
                    c.cursors.extend(h.state);
                    if let Some(error) = h.dead_letter {
                        tracing::warn!(source = %self.name, topic = %m.topic, %error, "message dead-lettered");
                        c.dead
                            .push((m.payload.clone(), format!("topic {}: {error}", m.topic)));
                    }
                    c.replies.extend(h.reply);
                    c.devices.extend(h.devices);
                    if self.observer.is_some() {
                        c.topics.push((m.topic.clone(), m.arrived));
                    }
                }
            }
            if let Some(token) = m.ack {
                c.acks.push(AckCmd::Ack(token, m.generation));
            }
        }
        if ack_only > 0 {
            tracing::info!(
                source = %self.name,
                count = ack_only,
                "redelivered messages were stored before: acknowledged, not stored again"
            );
        }
        c.cursors.push((
            Ledger::seq_key(&self.name),
            i64::try_from(ledger.seq()).unwrap_or(i64::MAX),
        ));
        c.journal = ledger.take_journal();
        c
    }
}

/// One transaction's worth of work and what to send once it is durable.
#[derive(Default)]
struct Commit {
    records: Vec<hearth_model::Record>,
    cursors: Vec<(String, i64)>,
    journal: Option<hearth_driver_api::JournalEntry>,
    dead: Vec<(Vec<u8>, String)>,
    acks: Vec<AckCmd>,
    replies: Vec<(String, Vec<u8>)>,
    topics: Vec<(String, std::time::Instant)>,
    devices: Vec<hearth_model::Device>,
}

/// Commits batches in order; after each commit, acknowledges its messages and sends replies.
async fn committer(
    ingest: hearth_driver_api::Ingest,
    name: String,
    mut rx: mpsc::Receiver<Commit>,
    acks: mpsc::UnboundedSender<AckCmd>,
    observer: Option<CommitObserver>,
) -> Result<(), DriverError> {
    while let Some(c) = rx.recv().await {
        // Dead letters first: a message is acknowledged only once its raw payload is kept.
        for (raw, error) in c.dead {
            ingest.dead_letter(&name, raw, error).await?;
        }
        let records = c.records.len();
        let requested = std::time::Instant::now();
        ingest
            .submit_with_journal(c.records, c.cursors, c.journal)
            .await?;
        // Device facts (issue 6) are bookkeeping, not acknowledged data: a failure is logged
        // and the next `bridge/devices` (retained, sent again on reconnect) tries again.
        for d in c.devices {
            if let Some(id) = d.id.clone()
                && let Err(e) = ingest.device_facts(&id, d).await
            {
                tracing::warn!(source = %name, device = %id, error = %e, "device facts not stored");
            }
        }
        if let Some(o) = &observer {
            let _ = o.send(CommittedBatch {
                requested,
                at: std::time::Instant::now(),
                topics: c.topics,
                records,
            });
        }
        for a in c.acks {
            let _ = acks.send(a);
        }
        for (topic, payload) in c.replies {
            let _ = acks.send(AckCmd::Reply(topic, payload));
        }
    }
    Ok(())
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl Driver for MqttSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(&'a mut self, ctx: &'a DriverContext) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(self.run_session(ctx))
    }
}
