//! The endpoint's connection slots, shared fairly. A connection that has not sent a complete
//! request (still sending headers, in a TLS handshake, or idle between keep-alive requests) holds
//! its slot only while nobody else needs it: when every slot is taken and a client connects, the
//! oldest such connection of the address holding the most connections is closed to make room.
//! So one client opening idle connections as fast as they are cut can only displace its own, and
//! a scraper sending a complete request is served at once instead of waiting out the header
//! timeout of every connection ahead of it; connections answering a request are never cut here.
//! Only when every slot is answering a request do new clients wait in the listen backlog.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

/// How often, at most, closing idle connections for room is logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

pub struct Slots {
    /// Connections held at once (`usize::MAX`: no limit).
    max: usize,
    inner: Mutex<Inner>,
    /// A slot freed, or a connection finished its answer and may be displaced.
    room: Notify,
}

struct Inner {
    next: u64,
    /// By age: ids only grow.
    open: BTreeMap<u64, Held>,
    /// Connections in `open` by address.
    per_peer: HashMap<IpAddr, usize>,
    evicted: u64,
    last_warned: Option<Instant>,
}

struct Held {
    peer: IpAddr,
    answering: Arc<AtomicBool>,
    close: Option<oneshot::Sender<()>>,
}

/// One admitted connection: frees its slot when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    answering: Arc<AtomicBool>,
    /// Resolves when the connection is displaced.
    closed: Option<oneshot::Receiver<()>>,
}

/// Whether a connection is answering a request: [`Answering::start`] when a complete request is
/// in, [`Answering::done`] once its response is written out (see
/// [`super::deadline::WriteDeadline`]). While answering, a connection is never displaced.
#[derive(Clone)]
pub struct Answering {
    flag: Arc<AtomicBool>,
    slots: Arc<Slots>,
}

impl Answering {
    pub fn start(&self) {
        self.flag.store(true, Ordering::Release);
    }

    pub fn done(&self) {
        if self.flag.swap(false, Ordering::AcqRel) {
            // A client waiting for room may now displace this connection.
            self.slots.room.notify_waiters();
        }
    }
}

impl Slot {
    pub fn answering(&self) -> Answering {
        Answering { flag: self.answering.clone(), slots: self.slots.clone() }
    }

    /// Resolves when the connection must close to make room for another client.
    pub fn displaced(&mut self) -> impl Future<Output = ()> + use<> {
        let closed = self.closed.take();
        async move {
            match closed {
                // A dropped sender (the slot table gone) is no reason to close.
                Some(rx) => {
                    if rx.await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(self.id);
        self.slots.room.notify_waiters();
    }
}

impl Slots {
    /// `max` connections at once (0: no limit).
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max: if max == 0 { usize::MAX } else { max },
            inner: Mutex::new(Inner {
                next: 0,
                open: BTreeMap::new(),
                per_peer: HashMap::new(),
                evicted: 0,
                last_warned: None,
            }),
            room: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a slot is free for a client just accepted, displacing an idle connection when
    /// every slot is taken. A displaced connection holds its slot until its socket is closed, so
    /// the connections open never exceed the limit by more than the one waiting, which the
    /// open-file budget counts on.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.open.len() < self.max {
                    return;
                }
                if !inner.open.values().any(Held::closing) {
                    inner.displace_one();
                }
            }
            // A displaced connection closes within moments, an answer ends by itself (bounded by
            // the write timeout), and each notifies; the timer only guards against a missed
            // wake-up.
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }

    /// Admits a connection from `peer`, once [`Slots::room`] made room for it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Slot {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let answering = Arc::new(AtomicBool::new(false));
        let (close, closed) = oneshot::channel();
        inner.insert(id, Held { peer, answering: answering.clone(), close: Some(close) });
        drop(inner);
        Slot { slots: self.clone(), id, answering, closed: Some(closed) }
    }

    /// Frees a slot for an accept that failed for lack of file descriptors: the same choice as
    /// [`Slots::room`] makes. Whether one was found.
    pub fn displace_for_fd(&self) -> bool {
        self.lock().displace_one()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().open.len()
    }
}

impl Held {
    fn idle(&self) -> bool {
        !self.closing() && !self.answering.load(Ordering::Acquire)
    }

    /// Told to close, and not closed yet.
    fn closing(&self) -> bool {
        self.close.is_none()
    }
}

impl Inner {
    fn insert(&mut self, id: u64, held: Held) {
        *self.per_peer.entry(held.peer).or_default() += 1;
        self.open.insert(id, held);
    }

    fn remove(&mut self, id: u64) -> Option<Held> {
        let held = self.open.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&held.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&held.peer);
            }
        }
        Some(held)
    }

    /// Tells the oldest idle connection of the address holding the most connections to close;
    /// it leaves the table when its task has closed it.
    fn displace_one(&mut self) -> bool {
        // Every accept under a flood comes here: the crowding address first, and its oldest
        // connections first, so the search usually ends at the front.
        let mut peers: Vec<(usize, IpAddr)> = self.per_peer.iter().map(|(peer, n)| (*n, *peer)).collect();
        peers.sort_unstable_by(|a, b| b.cmp(a));
        let victim = peers.into_iter().find_map(|(count, peer)| {
            self.open.iter().find(|(_, conn)| conn.peer == peer && conn.idle()).map(|(id, _)| (*id, count, peer))
        });
        let Some((id, count, peer)) = victim else { return false };
        if let Some(close) = self.open.get_mut(&id).and_then(|conn| conn.close.take()) {
            let _ = close.send(());
        }
        self.evicted += 1;
        if self.last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                %peer,
                connections_of_peer = count,
                idle_connections_closed = self.evicted,
                "every connection slot is taken: closing the oldest idle connections (no complete request) of \
                 the address holding the most, to make room for new clients"
            );
            self.last_warned = Some(Instant::now());
            self.evicted = 0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn is_closed(slot: &mut Slot) -> bool {
        slot.closed.as_mut().is_some_and(|rx| rx.try_recv().is_ok())
    }

    /// Runs [`Slots::room`] until it has told a connection to close: that connection's index.
    async fn displaced(slots: &Arc<Slots>, held: &mut [Slot]) -> usize {
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.room().await }
        });
        let mut found = None;
        for _ in 0..100 {
            found = held.iter_mut().position(is_closed);
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let found = found.expect("a connection told to close");
        assert!(!waiting.is_finished(), "its slot is held until it has closed");
        waiting.abort();
        found
    }

    #[tokio::test]
    async fn the_crowding_address_loses_its_oldest_idle_connection_first() {
        let slots = Slots::new(4);
        let mut held: Vec<Slot> = [1, 1, 1, 2].into_iter().map(|i| slots.admit(ip(i))).collect();
        // Answering: never displaced, even though it is the oldest.
        held[0].answering().start();
        assert_eq!(displaced(&slots, &mut held).await, 1);
        drop(held.remove(1));
        tokio::time::timeout(Duration::from_secs(1), slots.room()).await.expect("room once it closed");
        held.push(slots.admit(ip(1)));
        // Another address arrives: still the crowding address pays, its oldest idle first.
        assert_eq!(displaced(&slots, &mut held).await, 1);
        assert_eq!(held[1].id, 2);
        assert_eq!(slots.len(), 4);
    }

    #[tokio::test]
    async fn room_waits_while_every_slot_answers_and_returns_when_one_ends() {
        let slots = Slots::new(1);
        let mut busy = vec![slots.admit(ip(1))];
        let answering = busy[0].answering();
        answering.start();
        let waiting = tokio::time::timeout(Duration::from_millis(100), slots.room()).await;
        assert!(waiting.is_err(), "no room while the only slot answers");
        assert!(!is_closed(&mut busy[0]));
        // Its answer is out: it is told to close at once (the wait does not last the 1 s timer).
        let started = std::time::Instant::now();
        answering.done();
        assert_eq!(displaced(&slots, &mut busy).await, 0);
        assert!(started.elapsed() < Duration::from_millis(500));
        busy.clear();
        tokio::time::timeout(Duration::from_millis(500), slots.room()).await.expect("room once it closed");
        assert_eq!(slots.len(), 0);
    }
}
