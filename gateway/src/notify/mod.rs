//! Notification e-mails: staff-editable templates ([`templates`]) and the sender
//! that mails customers and staff about business events, once per event
//! ([`EmailSender`], run by `emporium serve` beside the projections).

mod sender;
pub mod templates;

pub use sender::{EmailSender, Outgoing, consumer_name};
