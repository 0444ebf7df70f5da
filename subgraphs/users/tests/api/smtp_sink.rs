//! A tiny SMTP server on 127.0.0.1: speaks just enough of RFC 5321 for the
//! mailer, records every message it accepts, or refuses as it is told.

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// How the sink answers.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Takes every message.
    Accept,
    /// Answers `RCPT TO` with this reply (e.g. `451 4.3.0 try again later`).
    RefuseRecipient(&'static str),
    /// Closes every connection at once, before its greeting.
    HangUp,
}

/// One message as the sink received it.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Headers and body, as sent between `DATA` and the final dot.
    pub data: String,
}

pub struct SmtpSink {
    /// `smtp://127.0.0.1:<port>`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let _ = session(stream, behaviour, &sink).await;
                });
            }
        });
        Self {
            url,
            received,
            task,
        }
    }

    /// Messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The address inside `MAIL FROM:<a@b> …` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command[start..end].to_owned()
}

async fn session(
    stream: TcpStream,
    behaviour: Behaviour,
    sink: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    if let Behaviour::HangUp = behaviour {
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut message = Received::default();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &str = match verb.as_str() {
            "EHLO" | "HELO" => "250 sink",
            "MAIL" => {
                message = Received {
                    mail_from: address(&command),
                    ..Received::default()
                };
                "250 2.1.0 ok"
            }
            "RCPT" => match behaviour {
                Behaviour::RefuseRecipient(reply) => reply,
                _ => {
                    message.rcpt_to.push(address(&command));
                    "250 2.1.5 ok"
                }
            },
            "DATA" => {
                write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    message.data.push_str(&line);
                }
                sink.lock().unwrap().push(std::mem::take(&mut message));
                "250 2.0.0 queued"
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            "RSET" => {
                message = Received::default();
                "250 2.0.0 ok"
            }
            _ => "250 2.0.0 ok",
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}
