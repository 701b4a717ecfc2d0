//! Live changes for subscriptions: the viewer's order status changes and new
//! in-app notifications, from the read models' change feed.
//!
//! **Why the read models, not a JetStream consumer.** A notification exists only in
//! the `notifications` read model (derived there from order, payment and stock events),
//! and an order's status history is what the `orders` read model holds, so a
//! subscription needs those rows whatever feeds it. Their projections commit each
//! change together with their checkpoint, a cursor in the event store's commit order
//! `(transaction_id, position)`, and announce it with `NOTIFY`; [`CheckpointWatch`]
//! hears that in every gateway replica. So:
//!
//! - per process and feed, one [`Hub`] task waits for the projection's checkpoint to
//!   move from `a` to `b`, reads the rows the events in `(a, b]` touched (one query,
//!   a range scan of `events_commit_order` joined to the read model by key, for every
//!   subscriber at once) and fans them out over a `tokio::sync::broadcast`;
//! - a subscriber first joins the broadcast, then reads its starting state and the
//!   projection's checkpoint `c0` in one snapshot, and takes from the broadcast only
//!   what lies after `c0`. Whatever the hub sent before the subscriber joined lies at
//!   or before `c0` (checkpoints only grow, and the watch never runs ahead of the
//!   table), so nothing falls between "subscribe" and "first event";
//! - a subscriber that falls behind the broadcast (`Lagged`) reads what it missed
//!   itself, from its last cursor up to the checkpoint at that moment, then goes on;
//! - several replicas each run their own hubs off the same table and `NOTIFY`; no
//!   per-subscriber NATS consumer, no state shared between replicas.
//!
//! Order subscriptions deduplicate by the length of the order's status history (it
//! only grows), so a row read "ahead" of its batch never repeats a step and every step
//! is delivered once, in order.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::Stream;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::types::Json;
use tokio::sync::{OnceCell, broadcast};
use uuid::Uuid;

use emporium_projections::envelope::CommitPosition;
use emporium_projections::projection::CheckpointWatch;

use super::{NotificationRow, StatusChange};
use crate::error::ApiError;

const ORDERS: &str = "orders";
const NOTIFICATIONS: &str = "notifications";

/// How many batches a slow subscriber may fall behind before it reads what it missed
/// from the database itself.
const BROADCAST_CAPACITY: usize = 256;

/// A live stream of results; an `Err` is the last item.
pub(crate) type LiveStream<T> = Pin<Box<dyn Stream<Item = Result<T, ApiError>> + Send>>;

/// A row a feed delivers, with the commit position of the event that changed it and
/// the user it belongs to.
#[derive(Debug, Clone)]
struct Item<T> {
    cursor: CommitPosition,
    owner: Uuid,
    value: T,
}

/// What a hub broadcasts: the rows changed up to the checkpoint `to`.
#[derive(Debug)]
struct Batch<T> {
    to: CommitPosition,
    items: Vec<Item<T>>,
}

/// Where a feed's rows come from: PostgreSQL (the event store and the read models in
/// one database, one query), or the embedded mode's two files (the event store's
/// `events` for which events lie in a range, then `read.db` for the rows they
/// touched).
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Postgres(PgPool),
    #[cfg(feature = "sqlite")]
    Embedded {
        store: sqlx::SqlitePool,
        read: sqlx::SqlitePool,
    },
}

impl Source {
    /// The projection's checkpoint now (START when it has none yet).
    async fn checkpoint(&self, projection: &str) -> anyhow::Result<CommitPosition> {
        match self {
            Self::Postgres(pool) => {
                let mut conn = pool.acquire().await.context("acquire")?;
                checkpoint_in(&mut conn, projection).await
            }
            #[cfg(feature = "sqlite")]
            Self::Embedded { read, .. } => embedded::checkpoint(read, projection).await,
        }
    }
}

type Fetch<T> = fn(
    Source,
    CommitPosition,
    CommitPosition,
    Option<Uuid>,
) -> BoxFuture<'static, anyhow::Result<Vec<Item<T>>>>;

/// One feed's fan-out in this process.
struct Hub<T> {
    tx: broadcast::Sender<Arc<Batch<T>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Drop for Hub<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The successor of `c` in commit order: waiting for "at or beyond" it is waiting for
/// "beyond" `c`.
fn successor(c: CommitPosition) -> CommitPosition {
    CommitPosition {
        transaction_id: c.transaction_id,
        position: c.position.saturating_add(1),
    }
}

fn binds(c: CommitPosition) -> (String, i64) {
    (
        c.transaction_id.to_string(),
        i64::try_from(c.position).unwrap_or(i64::MAX),
    )
}

fn cursor(txid: i64, position: i64) -> CommitPosition {
    CommitPosition {
        transaction_id: u64::try_from(txid).unwrap_or_default(),
        position: u64::try_from(position).unwrap_or_default(),
    }
}

impl<T: Clone + Send + Sync + 'static> Hub<T> {
    fn start(
        source: Source,
        watch: CheckpointWatch,
        projection: &'static str,
        fetch: Fetch<T>,
    ) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            let mut at = watch
                .checkpoint(projection)
                .unwrap_or(CommitPosition::START);
            loop {
                if watch
                    .wait_for(projection, successor(at), Duration::from_secs(3600))
                    .await
                    .is_err()
                {
                    continue;
                }
                let Some(to) = watch.checkpoint(projection) else {
                    continue;
                };
                if sender.receiver_count() == 0 {
                    // Nobody listens; a subscriber arriving later starts at or after
                    // `to` anyway.
                    at = to;
                    continue;
                }
                match fetch(source.clone(), at, to, None).await {
                    Ok(items) => {
                        drop(sender.send(Arc::new(Batch { to, items })));
                        at = to;
                    }
                    Err(e) => {
                        tracing::warn!(
                            projection,
                            error = format!("{e:#}"),
                            error_code = "live_feed_read_failed",
                            "live feed could not read changes; retrying"
                        );
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Self { tx, task }
    }
}

/// A step an order entered.
#[derive(Debug, Clone)]
pub(crate) struct OrderUpdate {
    pub(crate) order_id: Uuid,
    /// The order's status now.
    pub(crate) current: String,
    /// The step entered.
    pub(crate) step: StatusChange,
}

/// An order's state as a feed carries it.
#[derive(Debug, Clone)]
struct OrderState {
    order_id: Uuid,
    status: String,
    history: Vec<StatusChange>,
}

#[derive(sqlx::FromRow)]
struct OrderChangeRow {
    txid: i64,
    position: i64,
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    history: Json<Vec<StatusChange>>,
}

fn fetch_orders(
    source: Source,
    from: CommitPosition,
    to: CommitPosition,
    owner: Option<Uuid>,
) -> BoxFuture<'static, anyhow::Result<Vec<Item<OrderState>>>> {
    Box::pin(async move {
        let pool = match source {
            Source::Postgres(pool) => pool,
            #[cfg(feature = "sqlite")]
            Source::Embedded { store, read } => {
                return embedded::orders(&store, &read, from, to, owner).await;
            }
        };
        let (from_tx, from_pos) = binds(from);
        let (to_tx, to_pos) = binds(to);
        let mut rows: Vec<OrderChangeRow> = sqlx::query_as(
            "SELECT DISTINCT ON (o.order_id)
                    e.transaction_id::text::bigint AS txid, e.position,
                    o.order_id, o.customer_id, o.status, o.history
             FROM (
                 -- OFFSET 0 keeps the filter inside: only order ids are cast.
                 SELECT transaction_id, position, aggregate_id FROM events
                 WHERE aggregate_type = 'order'
                   AND (transaction_id, position) > ($1::text::xid8, $2)
                   AND (transaction_id, position) <= ($3::text::xid8, $4)
                 OFFSET 0
             ) e
             JOIN orders o ON o.order_id = e.aggregate_id::uuid
             WHERE ($5::uuid IS NULL OR o.customer_id = $5)
             ORDER BY o.order_id, e.transaction_id DESC, e.position DESC",
        )
        .bind(from_tx)
        .bind(from_pos)
        .bind(to_tx)
        .bind(to_pos)
        .bind(owner)
        .fetch_all(&pool)
        .await
        .context("read changed orders")?;
        rows.sort_by_key(|r| (r.txid, r.position));
        Ok(rows
            .into_iter()
            .map(|r| Item {
                cursor: cursor(r.txid, r.position),
                owner: r.customer_id,
                value: OrderState {
                    order_id: r.order_id,
                    status: r.status,
                    history: r.history.0,
                },
            })
            .collect())
    })
}

#[derive(sqlx::FromRow)]
struct NotificationChangeRow {
    txid: i64,
    position: i64,
    user_id: Uuid,
    #[sqlx(flatten)]
    row: NotificationRow,
}

fn fetch_notifications(
    source: Source,
    from: CommitPosition,
    to: CommitPosition,
    owner: Option<Uuid>,
) -> BoxFuture<'static, anyhow::Result<Vec<Item<NotificationRow>>>> {
    Box::pin(async move {
        let pool = match source {
            Source::Postgres(pool) => pool,
            #[cfg(feature = "sqlite")]
            Source::Embedded { store, read } => {
                return embedded::notifications(&store, &read, from, to, owner).await;
            }
        };
        let (from_tx, from_pos) = binds(from);
        let (to_tx, to_pos) = binds(to);
        // A notification's id is the id of the event it was derived from.
        let rows: Vec<NotificationChangeRow> = sqlx::query_as(
            "SELECT e.transaction_id::text::bigint AS txid, e.position, n.user_id,
                    n.notification_id, n.kind, n.title, n.body, n.order_id, n.created_at,
                    n.read_at
             FROM events e
             JOIN notifications n ON n.notification_id = e.event_id
             WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2)
               AND (e.transaction_id, e.position) <= ($3::text::xid8, $4)
               AND n.user_id IS NOT NULL
               AND ($5::uuid IS NULL OR n.user_id = $5)
             ORDER BY e.transaction_id, e.position",
        )
        .bind(from_tx)
        .bind(from_pos)
        .bind(to_tx)
        .bind(to_pos)
        .bind(owner)
        .fetch_all(&pool)
        .await
        .context("read new notifications")?;
        Ok(rows
            .into_iter()
            .map(|r| Item {
                cursor: cursor(r.txid, r.position),
                owner: r.user_id,
                value: r.row,
            })
            .collect())
    })
}

/// The feeds of one process, started on first use.
pub(crate) struct Live {
    source: Source,
    watch: OnceCell<CheckpointWatch>,
    orders: OnceCell<Hub<OrderState>>,
    notifications: OnceCell<Hub<NotificationRow>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// Reads the projection's checkpoint (START when it has none yet) inside `tx`.
async fn checkpoint_in(
    tx: &mut sqlx::PgConnection,
    projection: &str,
) -> anyhow::Result<CommitPosition> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1",
    )
    .bind(projection)
    .fetch_optional(tx)
    .await
    .context("read the checkpoint")?;
    Ok(row.map_or(CommitPosition::START, |(t, p)| cursor(t, p)))
}

/// Counts a subscriber in `emporium_subscriptions_active` while it lives.
struct Active(&'static str);

impl Active {
    /// Counts a subscriber that has read its starting point: from here on nothing it
    /// should see can be missed (what tests wait for before causing a change).
    fn started(feed: &'static str) -> Self {
        metrics::counter!("emporium_subscriptions_started_total", "feed" => feed).increment(1);
        metrics::gauge!("emporium_subscriptions_active", "feed" => feed).increment(1.0);
        Self(feed)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!("emporium_subscriptions_active", "feed" => self.0).decrement(1.0);
    }
}

/// What a subscriber keeps between items.
struct Follow<T> {
    _active: Active,
    rx: broadcast::Receiver<Arc<Batch<T>>>,
    source: Source,
    projection: &'static str,
    fetch: Fetch<T>,
    user: Uuid,
    /// Everything at or before this was taken into account.
    last: CommitPosition,
    /// Items to hand out before reading the broadcast again.
    pending: VecDeque<Item<T>>,
}

impl<T: Clone + Send + Sync + 'static> Follow<T> {
    /// The viewer's next items after `last`, from the broadcast or, after falling
    /// behind, from the database.
    async fn next_items(&mut self) -> Result<Option<()>, ApiError> {
        match self.rx.recv().await {
            Ok(batch) => {
                self.pending.extend(
                    batch
                        .items
                        .iter()
                        .filter(|i| i.owner == self.user && i.cursor > self.last)
                        .cloned(),
                );
                self.last = self.last.max(batch.to);
                Ok(Some(()))
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics::counter!("emporium_subscription_lagged_total", "feed" => self.projection)
                    .increment(1);
                tracing::debug!(
                    missed,
                    feed = self.projection,
                    "subscriber lagged; reading what it missed"
                );
                let now = self
                    .source
                    .checkpoint(self.projection)
                    .await
                    .map_err(ApiError::internal)?;
                let items = (self.fetch)(self.source.clone(), self.last, now, Some(self.user))
                    .await
                    .map_err(ApiError::internal)?;
                self.pending.extend(items);
                self.last = self.last.max(now);
                Ok(Some(()))
            }
            Err(broadcast::error::RecvError::Closed) => Ok(None),
        }
    }
}

impl Live {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            source: Source::Postgres(pool),
            watch: OnceCell::new(),
            orders: OnceCell::new(),
            notifications: OnceCell::new(),
        }
    }

    /// The feeds of the embedded mode: events from the store's file, rows from
    /// `read.db`, checkpoints announced in process by the embedded runners (`watch`).
    #[cfg(feature = "sqlite")]
    pub(crate) fn embedded(
        store: sqlx::SqlitePool,
        read: sqlx::SqlitePool,
        watch: CheckpointWatch,
    ) -> Self {
        Self {
            source: Source::Embedded { store, read },
            watch: OnceCell::new_with(Some(watch)),
            orders: OnceCell::new(),
            notifications: OnceCell::new(),
        }
    }

    async fn watch(&self) -> Result<&CheckpointWatch, ApiError> {
        self.watch
            .get_or_try_init(|| async {
                match &self.source {
                    Source::Postgres(pool) => CheckpointWatch::start(pool.clone()).await,
                    #[cfg(feature = "sqlite")]
                    Source::Embedded { .. } => {
                        anyhow::bail!("the embedded checkpoint watch is given at construction")
                    }
                }
            })
            .await
            .map_err(ApiError::internal)
    }

    async fn orders_hub(&self) -> Result<&Hub<OrderState>, ApiError> {
        let watch = self.watch().await?.clone();
        Ok(self
            .orders
            .get_or_init(|| async { Hub::start(self.source.clone(), watch, ORDERS, fetch_orders) })
            .await)
    }

    async fn notifications_hub(&self) -> Result<&Hub<NotificationRow>, ApiError> {
        let watch = self.watch().await?.clone();
        Ok(self
            .notifications
            .get_or_init(|| async {
                Hub::start(
                    self.source.clone(),
                    watch,
                    NOTIFICATIONS,
                    fetch_notifications,
                )
            })
            .await)
    }

    /// The user's new notifications, from now on.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub(crate) async fn notifications(
        &self,
        user: Uuid,
    ) -> Result<LiveStream<NotificationRow>, ApiError> {
        let rx = self.notifications_hub().await?.tx.subscribe();
        let start = self
            .source
            .checkpoint(NOTIFICATIONS)
            .await
            .map_err(ApiError::internal)?;
        let follow = Follow {
            _active: Active::started(NOTIFICATIONS),
            rx,
            source: self.source.clone(),
            projection: NOTIFICATIONS,
            fetch: fetch_notifications,
            user,
            last: start,
            pending: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(
            Some(follow),
            |state| async move {
                let mut follow = state?;
                loop {
                    if let Some(item) = follow.pending.pop_front() {
                        return Some((Ok(item.value), Some(follow)));
                    }
                    match follow.next_items().await {
                        Ok(Some(())) => {}
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), None)),
                    }
                }
            },
        )))
    }

    /// The status steps the user's orders enter from now on; with `order`, only that
    /// order's, starting with the step it is at now.
    ///
    /// # Errors
    /// `NOT_FOUND` when `order` is not one of the user's orders (a foreign one looks
    /// exactly like a missing one); when the database cannot be read.
    pub(crate) async fn order_updates(
        &self,
        user: Uuid,
        order: Option<Uuid>,
    ) -> Result<LiveStream<OrderUpdate>, ApiError> {
        let rx = self.orders_hub().await?.tx.subscribe();
        // The starting state and the checkpoint it reflects, in one snapshot.
        let (start, snapshot) = self
            .order_snapshot(user, order)
            .await
            .map_err(ApiError::internal)?;
        let mut first = VecDeque::new();
        if let Some(order_id) = order {
            let Some(state) = snapshot.iter().find(|s| s.order_id == order_id) else {
                return Err(ApiError::NotFound { what: "order" });
            };
            if let Some(step) = state.history.last() {
                first.push_back(OrderUpdate {
                    order_id,
                    current: state.status.clone(),
                    step: step.clone(),
                });
            }
        }
        let seen: HashMap<Uuid, usize> = snapshot
            .into_iter()
            .map(|s| (s.order_id, s.history.len()))
            .collect();
        let follow = Follow {
            _active: Active::started(ORDERS),
            rx,
            source: self.source.clone(),
            projection: ORDERS,
            fetch: fetch_orders,
            user,
            last: start,
            pending: VecDeque::new(),
        };
        let state = OrderFollow {
            follow,
            only: order,
            seen,
            ready: first,
        };
        Ok(Box::pin(futures::stream::unfold(
            Some(state),
            |state| async move {
                let mut s = state?;
                loop {
                    if let Some(update) = s.ready.pop_front() {
                        return Some((Ok(update), Some(s)));
                    }
                    if let Some(item) = s.follow.pending.pop_front() {
                        s.take(item.value);
                        continue;
                    }
                    match s.follow.next_items().await {
                        Ok(Some(())) => {}
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), None)),
                    }
                }
            },
        )))
    }

    async fn order_snapshot(
        &self,
        user: Uuid,
        order: Option<Uuid>,
    ) -> anyhow::Result<(CommitPosition, Vec<OrderState>)> {
        let pool = match &self.source {
            Source::Postgres(pool) => pool,
            #[cfg(feature = "sqlite")]
            Source::Embedded { read, .. } => {
                return embedded::order_snapshot(read, user, order).await;
            }
        };
        let mut tx = pool.begin().await.context("begin")?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .context("snapshot")?;
        let start = checkpoint_in(&mut tx, ORDERS).await?;
        // Before the orders view first installs (a fresh database whose runner has not
        // built yet, or a replica started beside it) there is no table and nothing to
        // see: the stream starts from the feed's beginning.
        if start == CommitPosition::START {
            let installed: Option<String> =
                sqlx::query_scalar("SELECT to_regclass('orders')::text")
                    .fetch_one(&mut *tx)
                    .await
                    .context("look for the orders view")?;
            if installed.is_none() {
                tx.commit().await.context("end snapshot")?;
                return Ok((start, Vec::new()));
            }
        }
        let rows: Vec<(Uuid, String, Json<Vec<StatusChange>>)> = sqlx::query_as(
            "SELECT order_id, status, history FROM orders
             WHERE customer_id = $1 AND ($2::uuid IS NULL OR order_id = $2)",
        )
        .bind(user)
        .bind(order)
        .fetch_all(&mut *tx)
        .await
        .context("read the viewer's orders")?;
        tx.commit().await.context("end snapshot")?;
        Ok((
            start,
            rows.into_iter()
                .map(|(order_id, status, history)| OrderState {
                    order_id,
                    status,
                    history: history.0,
                })
                .collect(),
        ))
    }
}

/// An order subscriber's state: the history length seen per order.
struct OrderFollow {
    follow: Follow<OrderState>,
    only: Option<Uuid>,
    seen: HashMap<Uuid, usize>,
    ready: VecDeque<OrderUpdate>,
}

impl OrderFollow {
    fn take(&mut self, state: OrderState) {
        if self.only.is_some_and(|only| only != state.order_id) {
            return;
        }
        let seen = self.seen.entry(state.order_id).or_insert(0);
        if state.history.len() <= *seen {
            return;
        }
        for step in &state.history[*seen..] {
            self.ready.push_back(OrderUpdate {
                order_id: state.order_id,
                current: state.status.clone(),
                step: step.clone(),
            });
        }
        *seen = state.history.len();
    }
}

/// The embedded mode's reads: which events lie in a range comes from the store's
/// `events` (an envelope's commit position there is `(position, position)`), the rows
/// they touched from `read.db`, by key.
#[cfg(feature = "sqlite")]
mod embedded {
    use std::collections::HashMap;

    use anyhow::Context as _;
    use sqlx::types::Json;
    use sqlx::{QueryBuilder, Sqlite, SqlitePool};
    use uuid::Uuid;

    use super::{CommitPosition, Item, NotificationRow, ORDERS, OrderState, StatusChange};

    /// How many keys one `IN (…)` list carries (SQLite's limit is 32,766 variables).
    const KEYS_PER_QUERY: usize = 500;

    fn position(c: CommitPosition) -> i64 {
        i64::try_from(c.position).unwrap_or(i64::MAX)
    }

    fn cursor(position: i64) -> CommitPosition {
        let position = u64::try_from(position).unwrap_or_default();
        CommitPosition {
            transaction_id: position,
            position,
        }
    }

    pub(super) async fn checkpoint(
        read: &SqlitePool,
        projection: &str,
    ) -> anyhow::Result<CommitPosition> {
        let mut conn = read.acquire().await.context("acquire")?;
        checkpoint_in(&mut conn, projection).await
    }

    async fn checkpoint_in(
        conn: &mut sqlx::SqliteConnection,
        projection: &str,
    ) -> anyhow::Result<CommitPosition> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1",
        )
        .bind(projection)
        .fetch_optional(conn)
        .await
        .context("read the checkpoint")?;
        Ok(row.map_or(CommitPosition::START, |(t, p)| CommitPosition {
            transaction_id: u64::try_from(t).unwrap_or_default(),
            position: u64::try_from(p).unwrap_or_default(),
        }))
    }

    /// The ids of `aggregate_type`'s aggregates (or of the events, with `events`)
    /// recorded in `(from, to]`, each with the position of its last event there.
    async fn touched(
        store: &SqlitePool,
        aggregate_type: Option<&str>,
        from: CommitPosition,
        to: CommitPosition,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        let sql = if aggregate_type.is_some() {
            "SELECT max(position), aggregate_id FROM events
             WHERE aggregate_type = $3 AND position > $1 AND position <= $2
             GROUP BY aggregate_id"
        } else {
            "SELECT position, event_id FROM events WHERE position > $1 AND position <= $2"
        };
        sqlx::query_as(sql)
            .bind(position(from))
            .bind(position(to))
            .bind(aggregate_type)
            .fetch_all(store)
            .await
            .context("read the events in range")
    }

    fn keyed(rows: Vec<(i64, String)>) -> HashMap<Uuid, i64> {
        rows.into_iter()
            .filter_map(|(p, id)| Uuid::parse_str(&id).ok().map(|id| (id, p)))
            .collect()
    }

    /// The rows of `select` (which ends in `… IN (`) whose key is one of `keys`, and
    /// when `owner` is given only its rows (`owner_column = owner`), in chunks of
    /// [`KEYS_PER_QUERY`] keys.
    async fn by_key<T>(
        read: &SqlitePool,
        select: &str,
        owner_column: &str,
        keys: &HashMap<Uuid, i64>,
        owner: Option<Uuid>,
    ) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let ids: Vec<Uuid> = keys.keys().copied().collect();
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(KEYS_PER_QUERY) {
            let mut q = QueryBuilder::<Sqlite>::new(select);
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            if let Some(owner) = owner {
                q.push(format!(" AND {owner_column} = ")).push_bind(owner);
            }
            rows.extend(q.build_query_as::<T>().fetch_all(read).await?);
        }
        Ok(rows)
    }

    #[derive(sqlx::FromRow)]
    struct OrderRow {
        order_id: Uuid,
        customer_id: Uuid,
        status: String,
        history: Json<Vec<StatusChange>>,
    }

    pub(super) async fn orders(
        store: &SqlitePool,
        read: &SqlitePool,
        from: CommitPosition,
        to: CommitPosition,
        owner: Option<Uuid>,
    ) -> anyhow::Result<Vec<Item<OrderState>>> {
        let changed = keyed(touched(store, Some("order"), from, to).await?);
        let rows: Vec<OrderRow> = by_key(
            read,
            "SELECT order_id, customer_id, status, history FROM orders WHERE order_id IN (",
            "customer_id",
            &changed,
            owner,
        )
        .await
        .context("read changed orders")?;
        let mut items: Vec<_> = rows
            .into_iter()
            .map(|r| Item {
                cursor: cursor(changed.get(&r.order_id).copied().unwrap_or_default()),
                owner: r.customer_id,
                value: OrderState {
                    order_id: r.order_id,
                    status: r.status,
                    history: r.history.0,
                },
            })
            .collect();
        items.sort_by_key(|i| i.cursor);
        Ok(items)
    }

    #[derive(sqlx::FromRow)]
    struct NotificationChangeRow {
        user_id: Uuid,
        #[sqlx(flatten)]
        row: NotificationRow,
    }

    pub(super) async fn notifications(
        store: &SqlitePool,
        read: &SqlitePool,
        from: CommitPosition,
        to: CommitPosition,
        owner: Option<Uuid>,
    ) -> anyhow::Result<Vec<Item<NotificationRow>>> {
        // A notification's id is the id of the event it was derived from.
        let events = keyed(touched(store, None, from, to).await?);
        let rows: Vec<NotificationChangeRow> = by_key(
            read,
            "SELECT user_id, notification_id, kind, title, body, order_id, created_at, read_at
             FROM notifications WHERE user_id IS NOT NULL AND notification_id IN (",
            "user_id",
            &events,
            owner,
        )
        .await
        .context("read new notifications")?;
        let mut items: Vec<_> = rows
            .into_iter()
            .map(|r| Item {
                cursor: cursor(
                    events
                        .get(&r.row.notification_id)
                        .copied()
                        .unwrap_or_default(),
                ),
                owner: r.user_id,
                value: r.row,
            })
            .collect();
        items.sort_by_key(|i| i.cursor);
        Ok(items)
    }

    /// The viewer's orders and the checkpoint they reflect, in one read transaction
    /// (a WAL snapshot).
    pub(super) async fn order_snapshot(
        read: &SqlitePool,
        user: Uuid,
        order: Option<Uuid>,
    ) -> anyhow::Result<(CommitPosition, Vec<OrderState>)> {
        let mut tx = read.begin().await.context("begin")?;
        let start = checkpoint_in(&mut tx, ORDERS).await?;
        let installed: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'orders'",
        )
        .fetch_optional(&mut *tx)
        .await
        .context("look for the orders view")?;
        if installed.is_none() {
            tx.commit().await.context("end snapshot")?;
            return Ok((start, Vec::new()));
        }
        let rows: Vec<OrderRow> = sqlx::query_as(
            "SELECT order_id, customer_id, status, history FROM orders
             WHERE customer_id = $1 AND ($2 IS NULL OR order_id = $2)",
        )
        .bind(user)
        .bind(order)
        .fetch_all(&mut *tx)
        .await
        .context("read the viewer's orders")?;
        tx.commit().await.context("end snapshot")?;
        Ok((
            start,
            rows.into_iter()
                .map(|r| OrderState {
                    order_id: r.order_id,
                    status: r.status,
                    history: r.history.0,
                })
                .collect(),
        ))
    }
}
