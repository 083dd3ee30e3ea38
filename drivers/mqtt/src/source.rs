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

/// Added to the safety session's sequence numbers before the handler sees them, so that the
/// two sessions of a source never give a message the same sequence (record ids derive from
/// it). The ledger keeps the plain count.
const SAFETY_SEQ: u64 = 1 << 62;

/// Safety commits that may wait for the committer (each is small; the committer takes them
/// before the bulk ones).
const SAFETY_COMMITS: usize = 64;

/// The safety session of a source (issue 15): its own client id, persistent session, ledger,
/// subscriptions record and acknowledgements; its messages share the source's handler.
struct SafetyLane {
    /// `<source>/safety`: the name of its ledger (`mqtt:<source>/safety`), sequence cursor
    /// and subscriptions record. `/` cannot occur in a source name, so it names no source.
    name: String,
    rx: mpsc::Receiver<LinkEvent>,
    ledger: Ledger,
    alarm_source: String,
}

/// The lane a batch came on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    Main,
    Safety,
}

/// An MQTT source: a transport, a handler and the commit-then-ack loop.
pub struct MqttSource {
    name: String,
    transport: Transport,
    handler: Box<dyn Handler>,
    max_pending: usize,
    reconnect: (Duration, Duration),
    observer: Option<CommitObserver>,
    /// Topic filters of the safety session whose messages the main session acknowledges
    /// without storing (see `run_session`).
    ignore: Vec<String>,
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
            ignore: Vec::new(),
        }
    }

    /// Report every committed batch to `observer`.
    pub fn observe(mut self, observer: CommitObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The safety lane's name (see [`SafetyLane::name`]).
    fn safety_name(&self) -> String {
        format!("{}/safety", self.name)
    }

    async fn run_session(&mut self, ctx: &DriverContext) -> Result<(), DriverError> {
        let state = ctx.ingest.cursors(&self.handler.state_prefix()).await?;
        self.handler.restore(state);
        let mut ledger = open_ledger(ctx, &self.name).await?;
        let mut safety = None;
        let mut safety_acks = None;
        let mut tasks = Vec::new();
        let (mut rx, acks) = match &self.transport {
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
                // The safety session (issue 15): devices with a safety role, on a session of
                // their own, so that their messages never queue behind sensor traffic in the
                // broker. It also runs while a record of earlier safety filters exists, to
                // unsubscribe them and take what the broker still holds for it.
                let safety_name = self.safety_name();
                let configured = self.handler.safety_subscriptions();
                let recorded = subscriptions::decode(
                    &ctx.ingest
                        .journal(&subscriptions::journal_key(&safety_name))
                        .await?,
                );
                if !configured.is_empty() || recorded.as_ref().is_some_and(|r| !r.is_empty()) {
                    // The main session ignores a safety device's messages only once the broker
                    // has confirmed the safety subscription in an earlier run: until then the
                    // main session's queue may hold messages the safety session never gets.
                    // (Both sessions then store what both get; the shared engine's edges and
                    // momentary debounce keep an alarm from being raised twice.)
                    self.ignore = configured
                        .iter()
                        .filter(|f| recorded.as_ref().is_some_and(|r| r.contains(f)))
                        .cloned()
                        .collect();
                    let options = session::options(cfg, &format!("{}-safety", self.name))
                        .map_err(|e| DriverError::Config(e.to_string()))?;
                    let filters = Filters {
                        configured,
                        recorded,
                    };
                    tracing::info!(source = %self.name, filters = ?filters.configured, "starting the MQTT safety session");
                    let (srx, sacks, stasks) =
                        session::start(options, filters, self.reconnect, self.max_pending);
                    tasks.extend(stasks);
                    safety_acks = Some(sacks);
                    safety = Some(SafetyLane {
                        ledger: open_ledger(ctx, &safety_name).await?,
                        alarm_source: format!("mqtt:{safety_name}"),
                        name: safety_name,
                        rx: srx,
                    });
                }
                tracing::info!(source = %self.name, host = %cfg.host, port = cfg.port, "connecting to the MQTT broker");
                let (rx, acks, mtasks) =
                    session::start(options, filters, self.reconnect, self.max_pending);
                tasks.extend(mtasks);
                (rx, acks)
            }
            Transport::Simulated { script, period } => {
                let (rx, acks, stasks) = simulated::start(script.clone(), *period);
                tasks.extend(stasks);
                (rx, acks)
            }
        };
        let _abort = AbortOnDrop(tasks);
        let broker = match &self.transport {
            Transport::Broker(c) => format!("{}:{}", c.host, c.port),
            Transport::Simulated { .. } => "simulated".into(),
        };
        let alarm_source = format!("mqtt:{}", self.name);
        // Commits run in their own task, one after another, while the next batch is handled:
        // handling (CPU) and committing (SQLite) overlap. The channel holds one batch, so at
        // most two batches are between arrival and acknowledgement. Safety commits have a
        // channel of their own that the committer takes first.
        let (commit_tx, commit_rx) = mpsc::channel::<Commit>(1);
        let (safety_tx, safety_rx) = mpsc::channel::<Commit>(SAFETY_COMMITS);
        let committer = tokio::spawn(committer(
            ctx.ingest.clone(),
            self.name.clone(),
            Inputs {
                bulk: commit_rx,
                safety: safety_rx,
            },
            (acks.clone(), safety_acks),
            self.observer.clone(),
        ));
        let out = Out {
            bulk: commit_tx,
            safety: safety_tx,
        };
        let result = self
            .event_loop(
                &mut rx,
                &mut ledger,
                safety.as_mut(),
                ctx,
                &out,
                &alarm_source,
                &broker,
            )
            .await;
        // Let the committer finish what it has (so its acks go out), then report the first
        // failure of the two.
        drop(out);
        let committed = match committer.await {
            Ok(r) => r,
            Err(e) => Err(DriverError::Link(format!(
                "the MQTT committer task failed: {e}"
            ))),
        };
        result.and(committed)
    }

    #[allow(clippy::too_many_arguments)]
    async fn event_loop(
        &mut self,
        rx: &mut mpsc::Receiver<LinkEvent>,
        ledger: &mut Ledger,
        mut safety: Option<&mut SafetyLane>,
        ctx: &DriverContext,
        out: &Out,
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
            let safety_next = async {
                match safety.as_deref_mut() {
                    Some(lane) => lane.rx.recv().await,
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
                () = out.bulk.closed() => return Ok(()),
                // The safety session first: its messages never wait for a sensor batch.
                ev = safety_next => {
                    if let Some(lane) = safety.as_deref_mut() {
                        commits.extend(self.safety_event(ev, lane, ctx, broker).await?);
                    }
                }
                ev = rx.recv() => match ev {
                    None => return Err(DriverError::Link(format!(
                        "the MQTT session of source {} ended", self.name
                    ))),
                    Some(LinkEvent::Message(m)) => {
                        let (batch, link) = take_batch(m, rx);
                        let name = self.name.clone();
                        commits.push((Lane::Main, self.handle_batch(batch, ledger, &name, Lane::Main)));
                        for ev in link {
                            let c = self.link_event(ev, ctx, alarm_source, broker, &name).await?;
                            commits.extend(c.map(|c| (Lane::Main, c)));
                        }
                    }
                    Some(other) => {
                        let name = self.name.clone();
                        let c = self.link_event(other, ctx, alarm_source, broker, &name).await?;
                        commits.extend(c.map(|c| (Lane::Main, c)));
                    }
                },
                () = timer => {
                    let h = self.handler.tick(Timestamp::now());
                    if !h.records.is_empty() || !h.state.is_empty() {
                        let c = Commit {
                            records: h.records,
                            cursors: h.state,
                            ..Commit::default()
                        };
                        // A timer's alarm (a `for` rule come due) goes ahead too; the
                        // committer keeps the order of the state it shares with others.
                        let lane = if c.has_alarm() { Lane::Safety } else { Lane::Main };
                        commits.push((lane, c));
                    }
                }
            }
            for (lane, c) in commits {
                let sent = match lane {
                    Lane::Safety => out.safety.send(c).await.is_ok(),
                    Lane::Main => {
                        self.send_bulk(c, out, safety.as_deref_mut(), ctx, broker)
                            .await?
                    }
                };
                if !sent {
                    // The committer stopped on an error; `run_session` reports it.
                    return Ok(());
                }
            }
        }
    }

    /// Hands a bulk commit to the committer; while it waits for room (the committer is busy),
    /// the safety session is still served. A safety commit that writes a handler-state key
    /// this bulk commit writes too waits until this one is handed over (it was made first, so
    /// it commits first; the committer keeps that order). False when the committer has
    /// stopped.
    async fn send_bulk(
        &mut self,
        c: Commit,
        out: &Out,
        mut safety: Option<&mut SafetyLane>,
        ctx: &DriverContext,
        broker: &str,
    ) -> Result<bool, DriverError> {
        let mut bulk = Some(c);
        while bulk.is_some() {
            let safety_next = async {
                match safety.as_deref_mut() {
                    Some(lane) => lane.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                ev = safety_next => {
                    let Some(lane) = safety.as_deref_mut() else { continue };
                    for (_, s) in self.safety_event(ev, lane, ctx, broker).await? {
                        if let Some(b) = bulk.take_if(|b| b.overlaps(&s))
                            && out.bulk.send(b).await.is_err()
                        {
                            return Ok(false);
                        }
                        if out.safety.send(s).await.is_err() {
                            return Ok(false);
                        }
                    }
                }
                permit = out.bulk.reserve() => match permit {
                    Ok(p) => {
                        if let Some(b) = bulk.take() {
                            p.send(b);
                        }
                    }
                    Err(_) => return Ok(false),
                },
            }
        }
        Ok(true)
    }

    /// One event of the safety session: its commits (all for the safety lane).
    async fn safety_event(
        &mut self,
        ev: Option<LinkEvent>,
        lane: &mut SafetyLane,
        ctx: &DriverContext,
        broker: &str,
    ) -> Result<Vec<(Lane, Commit)>, DriverError> {
        let mut commits = Vec::new();
        match ev {
            None => {
                return Err(DriverError::Link(format!(
                    "the MQTT safety session of source {} ended",
                    self.name
                )));
            }
            Some(LinkEvent::Message(m)) => {
                let (batch, link) = take_batch(m, &mut lane.rx);
                commits.push((
                    Lane::Safety,
                    self.handle_batch(batch, &mut lane.ledger, &lane.name, Lane::Safety),
                ));
                for ev in link {
                    let c = self
                        .link_event(ev, ctx, &lane.alarm_source, broker, &lane.name)
                        .await?;
                    commits.extend(c.map(|c| (Lane::Safety, c)));
                }
            }
            Some(other) => {
                let c = self
                    .link_event(other, ctx, &lane.alarm_source, broker, &lane.name)
                    .await?;
                commits.extend(c.map(|c| (Lane::Safety, c)));
            }
        }
        Ok(commits)
    }

    /// Reports a link event; a confirmed subscription set becomes a commit of its record.
    async fn link_event(
        &self,
        ev: LinkEvent,
        ctx: &DriverContext,
        alarm_source: &str,
        broker: &str,
        session: &str,
    ) -> Result<Option<Commit>, DriverError> {
        match ev {
            LinkEvent::Subscribed(filters) => {
                tracing::info!(source = %self.name, session, filters = ?filters, "MQTT subscriptions confirmed by the broker");
                return Ok(Some(subscriptions_record(session, &filters)));
            }
            LinkEvent::Connected { session_present } => {
                tracing::info!(source = %self.name, session, session_present, "MQTT connected");
                ctx.technical
                    .clear(
                        alarm_source,
                        TechnicalKind::DeviceOffline,
                        "MQTT broker reachable again",
                    )
                    .await?;
            }
            LinkEvent::Lost(e) => {
                tracing::warn!(source = %self.name, session, error = %e, "MQTT connection lost; reconnecting");
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

    /// Turn a batch into one commit: records, handler state, ledger entries, the sequence
    /// number, dead letters, and the acknowledgements to send after it, in arrival order.
    /// `session` names the ledger; on the main lane, messages of the safety session's devices
    /// ([`MqttSource::ignore`]) are acknowledged without being stored (the safety session
    /// stores them).
    fn handle_batch(
        &mut self,
        batch: Vec<Incoming>,
        ledger: &mut Ledger,
        session: &str,
        lane: Lane,
    ) -> Commit {
        let now = Timestamp::now();
        let mut c = Commit::default();
        let mut ack_only = 0usize;
        for m in batch {
            if lane == Lane::Main
                && self
                    .ignore
                    .iter()
                    .any(|f| subscriptions::matches(f, &m.topic))
            {
                if let Some(token) = m.ack {
                    c.acks.push(AckCmd::Ack(token, m.generation));
                }
                continue;
            }
            let hash = content_hash(&m.topic, &m.payload);
            match ledger.admit(m.dup, m.pkid, hash) {
                Verdict::AckOnly => ack_only += 1,
                Verdict::Store(seq) => {
                    let seq = match lane {
                        Lane::Main => seq,
                        Lane::Safety => seq | SAFETY_SEQ,
                    };
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
            Ledger::seq_key(session),
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

impl Commit {
    /// Whether it stores a safety alarm.
    fn has_alarm(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, hearth_model::Record::Alarm(_)))
    }

    /// Whether both write a common cursor (handler state): then they must commit in the order
    /// they were made, or an older value would overwrite a newer one.
    fn overlaps(&self, other: &Commit) -> bool {
        self.cursors
            .iter()
            .any(|(k, _)| other.cursors.iter().any(|(o, _)| o == k))
    }
}

/// The commit that records the broker's subscriptions of a session: one journal entry,
/// replaced each time (same position, nothing older kept).
fn subscriptions_record(session: &str, filters: &[String]) -> Commit {
    Commit {
        journal: Some(hearth_driver_api::JournalEntry {
            source: subscriptions::journal_key(session),
            seq: 0,
            entries: subscriptions::encode(filters),
            keep_from: 0,
        }),
        ..Commit::default()
    }
}

/// The ledger of a session, from its committed sequence number and journal.
async fn open_ledger(ctx: &DriverContext, session: &str) -> Result<Ledger, DriverError> {
    let seq = ctx
        .ingest
        .cursor(&Ledger::seq_key(session))
        .await?
        .unwrap_or(0);
    let journal = ctx.ingest.journal(&Ledger::journal_key(session)).await?;
    Ok(Ledger::new(
        session,
        u64::try_from(seq).unwrap_or(0),
        &journal,
    ))
}

/// `first` and the messages queued behind it (up to [`MAX_BATCH`]), and the link event that
/// ended the batch, if one did.
fn take_batch(
    first: Incoming,
    rx: &mut mpsc::Receiver<LinkEvent>,
) -> (Vec<Incoming>, Vec<LinkEvent>) {
    let mut batch = vec![first];
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
    (batch, link)
}

/// Where the processor hands its commits.
struct Out {
    bulk: mpsc::Sender<Commit>,
    safety: mpsc::Sender<Commit>,
}

/// What the committer takes commits from.
struct Inputs {
    bulk: mpsc::Receiver<Commit>,
    safety: mpsc::Receiver<Commit>,
}

/// Commits batches; after each commit, acknowledges its messages (on the session they came
/// on) and sends replies. Safety commits go first: a bulk commit waiting in its channel waits
/// for them, unless it writes a cursor a safety commit writes too (it was made first, so it
/// commits first: every cursor is committed in the order the handler wrote it). Commits of
/// one lane keep their order.
async fn committer(
    ingest: hearth_driver_api::Ingest,
    name: String,
    mut inputs: Inputs,
    (acks, safety_acks): (
        mpsc::UnboundedSender<AckCmd>,
        Option<mpsc::UnboundedSender<AckCmd>>,
    ),
    observer: Option<CommitObserver>,
) -> Result<(), DriverError> {
    let safety_acks = safety_acks.unwrap_or_else(|| acks.clone());
    let mut safety: Option<Commit> = None;
    let mut held: Option<Commit> = None;
    let mut safety_open = true;
    let commit = |c: Commit, lane_acks: &mpsc::UnboundedSender<AckCmd>| {
        commit_one(&ingest, &name, c, lane_acks.clone(), observer.as_ref())
    };
    loop {
        if safety.is_none() {
            safety = inputs.safety.try_recv().ok();
        }
        if let Some(s) = safety.take() {
            if held.is_none() {
                held = inputs.bulk.try_recv().ok();
            }
            if let Some(h) = held.take_if(|h| h.overlaps(&s)) {
                commit(h, &acks).await?;
            }
            commit(s, &safety_acks).await?;
            continue;
        }
        if let Some(h) = held.take() {
            commit(h, &acks).await?;
            continue;
        }
        tokio::select! {
            biased;
            s = inputs.safety.recv(), if safety_open => match s {
                Some(s) => safety = Some(s),
                None => safety_open = false,
            },
            b = inputs.bulk.recv() => match b {
                Some(b) => held = Some(b),
                None => break,
            },
        }
    }
    while let Ok(s) = inputs.safety.try_recv() {
        commit(s, &safety_acks).await?;
    }
    Ok(())
}

/// One commit, then its acknowledgements and replies.
async fn commit_one(
    ingest: &hearth_driver_api::Ingest,
    name: &str,
    c: Commit,
    acks: mpsc::UnboundedSender<AckCmd>,
    observer: Option<&CommitObserver>,
) -> Result<(), DriverError> {
    // Dead letters first: a message is acknowledged only once its raw payload is kept.
    for (raw, error) in c.dead {
        ingest.dead_letter(name, raw, error).await?;
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
    if let Some(o) = observer {
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
