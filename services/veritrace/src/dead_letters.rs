//! `veritrace dead-letters list|replay`: what a consumer's dead-letter queue holds, and sending
//! it back once the cause is fixed (distributed mode; ADR 0002 §2.3).

use std::path::PathBuf;
use veritrace_kernel::amqp::{AmqpBus, DeadLetter};
use veritrace_kernel::config::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Subcommand)]
pub enum DeadLetterCommand {
    /// Show how many messages the dead-letter queue holds and the first of them (left in
    /// place): routing key, message id, why, size and the start of the body.
    List(DeadLetterOptions),
    /// Publish dead-lettered messages again, with the routing key they were first published
    /// with, oldest first; each leaves the dead-letter queue once the broker confirmed its copy.
    /// A message that still cannot be processed is dead-lettered again.
    Replay(DeadLetterOptions),
}

#[derive(clap::Args)]
pub struct DeadLetterOptions {
    /// Configuration file (TOML) naming `amqp.url` and `amqp.namespace`; VERITRACE_* variables
    /// override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The consumer queue whose dead letters to handle, without the namespace.
    #[arg(long, default_value = veritrace_anchor::QUEUE)]
    pub queue: String,
    /// At most this many messages.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// `list`: print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DeadLetterCommand {
    fn options(&self) -> &DeadLetterOptions {
        match self {
            DeadLetterCommand::List(o) | DeadLetterCommand::Replay(o) => o,
        }
    }
}

/// Runs the command; returns what to print.
pub async fn run(command: DeadLetterCommand) -> Result<String, BoxError> {
    let o = command.options();
    let config = Config::load(o.config.as_deref())?;
    if config.amqp.url.is_none() {
        return Err("amqp.url (VERITRACE_AMQP__URL) is not set".into());
    }
    let bus = AmqpBus::new(&config.amqp)?;
    let dlq = bus.dead_letter_queue_name(&o.queue);
    match &command {
        DeadLetterCommand::List(o) => {
            let (total, letters) = bus.dead_letters(&o.queue, o.limit).await?;
            if o.json {
                let report = serde_json::json!({
                    "queue": dlq,
                    "messages": total,
                    "shown": letters,
                });
                return Ok(format!("{}\n", serde_json::to_string_pretty(&report)?));
            }
            Ok(listing(&dlq, total, &letters))
        }
        DeadLetterCommand::Replay(o) => {
            let replayed = bus.replay_dead_letters(&o.queue, o.limit).await?;
            Ok(format!(
                "replayed {replayed} message{} from {dlq}\n",
                if replayed == 1 { "" } else { "s" }
            ))
        }
    }
}

fn listing(dlq: &str, total: u32, letters: &[DeadLetter]) -> String {
    let mut out = format!(
        "{dlq} holds {total} message{}\n",
        if total == 1 { "" } else { "s" }
    );
    for (i, l) in letters.iter().enumerate() {
        out.push_str(&format!(
            "{:>4}. {}  id {}  {}  {} bytes  {}\n",
            i + 1,
            l.routing_key,
            l.message_id.as_deref().unwrap_or("-"),
            l.reason.as_deref().unwrap_or("-"),
            l.body_bytes,
            l.body_preview.replace(['\n', '\r'], " ")
        ));
    }
    if (letters.len() as u32) < total {
        out.push_str(&format!("(first {} shown)\n", letters.len()));
    }
    out
}
