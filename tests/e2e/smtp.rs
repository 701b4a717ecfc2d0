//! The smallest real SMTP server that can receive the gateway's mail: it speaks
//! enough of RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT) for lettre, listens on loopback port 0, and hands every accepted message to
//! the test. A message is queued before `250` answers its DATA, so once the
//! gateway's send returned, the mail is there.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// One delivered message.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedMail {
    pub(crate) to: Vec<String>,
    /// Headers and body, CRLF-separated, dot-unstuffed.
    pub(crate) data: String,
}

impl ReceivedMail {
    /// The value after `Code: ` in the body.
    pub(crate) fn code(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.trim().strip_prefix("Code: "))
            .unwrap_or_else(|| panic!("no code in mail:\n{}", self.data))
            .trim()
            .to_owned()
    }

    /// The `Subject:` header.
    pub(crate) fn subject(&self) -> &str {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .trim()
    }
}

/// A running sink.
pub(crate) struct SmtpSink {
    addr: SocketAddr,
    inbox: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let addr = listener.local_addr().expect("smtp sink address");
        let (tx, rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, tx.clone()));
            }
        });
        Self {
            addr,
            inbox: Mutex::new(rx),
            server,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The next message, waiting for it up to 10 s (background sends).
    pub(crate) async fn next_mail(&self) -> ReceivedMail {
        tokio::time::timeout(Duration::from_secs(10), self.inbox.lock().await.recv())
            .await
            .expect("a mail within 10 s")
            .expect("smtp sink running")
    }

    /// A message already received, if any (no waiting).
    pub(crate) async fn try_next_mail(&self) -> Option<ReceivedMail> {
        self.inbox.lock().await.try_recv().ok()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.rfind('>').unwrap_or(arg.len());
    arg[start..end].to_owned()
}

async fn session(stream: TcpStream, inbox: mpsc::UnboundedSender<ReceivedMail>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut to = Vec::new();
    if write
        .write_all(b"220 emporium-test-sink ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 emporium-test-sink\r\n",
            "MAIL" => {
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&line));
                b"250 OK\r\n"
            }
            "DATA" => {
                if write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    data.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
                }
                let mail = ReceivedMail {
                    to: std::mem::take(&mut to),
                    data: data.join("\r\n"),
                };
                if inbox.send(mail).is_err() {
                    return;
                }
                b"250 OK queued\r\n"
            }
            "RSET" => {
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 command not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
