//! A TCP proxy in front of a server that can play a network that silently drops everything: on
//! [`Proxy::black_hole`] every open connection stops carrying bytes in both directions, without a
//! FIN or a reset, and new connections are accepted but carry nothing, as when a NAT or a firewall
//! forgets a flow. [`Proxy::restore`] lets new connections through; the old ones stay dead, as
//! forgotten flows do.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait::Worker;

/// Stopped, with every connection it carries, when dropped.
pub struct Proxy {
    pub port: u16,
    dropping: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    _worker: Worker<()>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to 127.0.0.1:<upstream>.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let dropping = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let (d, c) = (dropping.clone(), connections.clone());
        let worker = Worker::spawn("proxy", move |stop| {
            std::thread::scope(|scope| {
                while !stop.load(Ordering::Relaxed) {
                    let client = match listener.accept() {
                        Ok((client, _)) => client,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(_) => continue,
                    };
                    let dead = Arc::new(AtomicBool::new(d.load(Ordering::Relaxed)));
                    c.lock().unwrap().push(dead.clone());
                    if dead.load(Ordering::Relaxed) {
                        // Accepted, then silence: held open until the client gives up.
                        scope.spawn(move || drain(client, None, dead, stop));
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        // The server is down: the client sees the connection close, as it would.
                        drop(client);
                        continue;
                    };
                    let (client2, server2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                    let dead2 = dead.clone();
                    scope.spawn(move || drain(client, Some(server), dead, stop));
                    scope.spawn(move || drain(server2, Some(client2), dead2, stop));
                }
            });
        });
        Proxy { port, dropping, connections, _worker: worker }
    }

    /// From now on nothing passes, on open connections or new ones; no socket is closed.
    pub fn black_hole(&self) {
        self.dropping.store(true, Ordering::Relaxed);
        for dead in self.connections.lock().unwrap().iter() {
            dead.store(true, Ordering::Relaxed);
        }
    }

    /// New connections pass again; the ones that were open stay silent.
    pub fn restore(&self) {
        self.dropping.store(false, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` while the connection is alive; once dead, reads and discards (so the
/// sender never sees a full window either) until `from` closes or the proxy stops.
fn drain(mut from: TcpStream, to: Option<TcpStream>, dead: Arc<AtomicBool>, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !dead.load(Ordering::Relaxed)
                    && let Some(to) = &to
                    && to.try_clone().and_then(|mut t| t.write_all(&buf[..n])).is_err()
                {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    // A closed side is passed on only while the connection is alive: a dead flow says nothing.
    if !dead.load(Ordering::Relaxed)
        && let Some(to) = to
    {
        let _ = to.shutdown(Shutdown::Write);
    }
}
