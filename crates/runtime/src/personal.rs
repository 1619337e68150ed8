//! Personal data at the edge of every service: callers' subjects are sealed when their token is
//! verified ([`SealedSubjects`]), handlers seal the personal fields of requests through
//! [`crate::kit::Caller::seal`], and every answer is revealed on its way out ([`RevealLayer`]):
//! each sealed token in a response message's strings, in its status message and in its
//! trailers is opened with its subject's key, or replaced by the subject's placeholder once the
//! key was erased. Inside, everything (state, snapshots, stores, buses, the ledger) holds tokens.
//!
//! Messages a client verifies byte for byte keep their tokens (see [`verbatim`]): a CloudEvent
//! in an answer carries exactly what the buses carried (an audit bundle is bytes, never opened).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use flotilla_core::personal::{PREFIX, PersonalData};
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value,
};

/// Whether a message is answered as its service made it: any area's `CloudEvent` (what the
/// buses carried, tokens and all, which a client checks against the event's hash) and
/// `AuditReport` (a document its service revealed before rendering, so names are escaped as
/// HTML and JSON; opening tokens inside the rendered text would not escape them).
pub fn verbatim(full_name: &str) -> bool {
    full_name.starts_with("flotilla.")
        && (full_name.ends_with(".CloudEvent") || full_name.ends_with(".AuditReport"))
}

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(flotilla_proto::FILE_DESCRIPTOR_SET).ok());

/// The response message of a gRPC path, when the platform's contracts declare it.
fn output_of(path: &str) -> Option<MessageDescriptor> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next()?, parts.next()?);
    let pool = POOL.as_ref()?;
    let s = pool.get_service_by_name(service)?;
    let m = s.methods().find(|m| m.name() == method)?;
    Some(m.output())
}

/// Seals subjects with the keyring, for the access interceptor.
#[derive(Debug, Clone)]
pub struct SealedSubjects(pub Arc<PersonalData>);

impl flotilla_auth::layer::Pseudonyms for SealedSubjects {
    fn pseudonym<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move { self.0.seal(subject).await.map_err(|e| e.to_string()) })
    }
}

fn has_token(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, PREFIX.as_bytes()).is_some()
}

/// Every string of a message revealed, in place (nested messages, lists and maps too).
fn reveal_message<'a>(
    personal: &'a PersonalData,
    m: &'a mut DynamicMessage,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        if verbatim(m.descriptor().full_name()) {
            return;
        }
        let fields: Vec<_> = m.descriptor().fields().collect();
        for f in fields {
            if !m.has_field(&f) {
                continue;
            }
            let v = m.get_field_mut(&f);
            reveal_value(personal, v).await;
        }
    })
}

fn reveal_value<'a>(
    personal: &'a PersonalData,
    v: &'a mut Value,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        match v {
            Value::String(s) if s.contains(PREFIX) => *s = personal.reveal(s).await,
            Value::Message(m) => reveal_message(personal, m).await,
            Value::List(items) => {
                for item in items {
                    reveal_value(personal, item).await;
                }
            }
            Value::Map(map) => {
                let keys: Vec<MapKey> = map.keys().cloned().collect();
                for k in keys {
                    let Some(mut value) = map.remove(&k) else {
                        continue;
                    };
                    reveal_value(personal, &mut value).await;
                    let k = match k {
                        MapKey::String(s) if s.contains(PREFIX) => {
                            MapKey::String(personal.reveal(&s).await)
                        }
                        other => other,
                    };
                    map.insert(k, value);
                }
            }
            _ => {}
        }
    })
}

/// One encoded response message revealed (the same bytes when it holds no token or is not
/// decodable as the declared message).
async fn reveal_encoded(personal: &PersonalData, output: &MessageDescriptor, msg: Bytes) -> Bytes {
    if !has_token(&msg) {
        return msg;
    }
    let Ok(mut m) = DynamicMessage::decode(output.clone(), msg.clone()) else {
        return msg;
    };
    reveal_message(personal, &mut m).await;
    Bytes::from(m.encode_to_vec())
}

/// A status message (`grpc-message`) revealed, in headers or trailers.
async fn reveal_status(personal: &PersonalData, headers: &mut http::HeaderMap) {
    let Some(raw) = headers.get("grpc-message") else {
        return;
    };
    if !has_token(raw.as_bytes()) {
        return;
    }
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    let revealed = tonic::Status::new(status.code(), personal.reveal(status.message()).await);
    if let Err(e) = revealed.add_header(headers) {
        tracing::warn!(error = %e, "a revealed status message could not be encoded");
    }
}

/// What a request may not carry: a sealed token (a caller who put someone's token into a
/// free-text field would get it revealed in the answer).
const TOKEN_REFUSED: &str =
    "a request may not carry sealed personal data (a pii:v1: token); send the value itself";

/// The request body, passed on as it comes, refused at the first sealed token in it (also one
/// split across chunks).
fn refusing_tokens(body: tonic::body::Body) -> tonic::body::Body {
    let keep = PREFIX.len() - 1;
    let stream = futures::stream::unfold(
        (body, Vec::<u8>::new(), false),
        move |(mut body, mut tail, done)| async move {
            if done {
                return None;
            }
            match body.frame().await? {
                Err(e) => Some((Err(e), (body, tail, true))),
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        // The chunk, and the prefix's bytes across its start.
                        tail.extend_from_slice(&data[..data.len().min(keep)]);
                        if has_token(data) || has_token(&tail) {
                            tracing::warn!("a request carrying a sealed token was refused");
                            let refused = tonic::Status::invalid_argument(TOKEN_REFUSED);
                            return Some((Err(refused), (body, Vec::new(), true)));
                        }
                        tail.clear();
                        tail.extend_from_slice(&data[data.len().saturating_sub(keep)..]);
                    }
                    Some((Ok(frame), (body, tail, false)))
                }
            }
        },
    );
    tonic::body::Body::new(http_body_util::StreamBody::new(stream))
}

/// Reveals answers on their way out (see the module's documentation).
#[derive(Clone, Debug)]
pub struct RevealLayer {
    personal: Arc<PersonalData>,
}

impl RevealLayer {
    pub fn new(personal: Arc<PersonalData>) -> Self {
        Self { personal }
    }
}

impl<S> tower::Layer<S> for RevealLayer {
    type Service = RevealService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RevealService {
            inner,
            personal: self.personal.clone(),
        }
    }
}

/// The layered service.
#[derive(Clone, Debug)]
pub struct RevealService<S> {
    inner: S,
    personal: Arc<PersonalData>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The response body as gRPC frames (5-byte header, then the message), each revealed.
struct Frames {
    body: tonic::body::Body,
    buffered: BytesMut,
    personal: Arc<PersonalData>,
    output: MessageDescriptor,
    ended: bool,
}

impl Frames {
    /// The next complete frame in the buffer, if any: its flag, the whole frame, the message.
    fn complete(&mut self) -> Option<(u8, Bytes, Bytes)> {
        if self.buffered.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([
            self.buffered[1],
            self.buffered[2],
            self.buffered[3],
            self.buffered[4],
        ]) as usize;
        if self.buffered.len() < 5 + len {
            return None;
        }
        let flag = self.buffered[0];
        let frame = self.buffered.split_to(5 + len).freeze();
        let msg = frame.slice(5..);
        Some((flag, frame, msg))
    }

    async fn next(mut self) -> Option<(Result<Frame<Bytes>, tonic::Status>, Self)> {
        loop {
            if let Some((flag, frame, msg)) = self.complete() {
                // Compressed frames (flag 1) and frames without a token are passed on as they
                // are.
                if flag != 0 || !has_token(&msg) {
                    return Some((Ok(Frame::data(frame)), self));
                }
                let msg = reveal_encoded(&self.personal, &self.output, msg).await;
                let mut out = BytesMut::with_capacity(5 + msg.len());
                out.extend_from_slice(&[flag]);
                out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                out.extend_from_slice(&msg);
                return Some((Ok(Frame::data(out.freeze())), self));
            }
            if self.ended {
                if self.buffered.is_empty() {
                    return None;
                }
                // A truncated frame: passed on for the client to refuse.
                let rest = self.buffered.split().freeze();
                return Some((Ok(Frame::data(rest)), self));
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => {
                    // Nothing after an error.
                    self.ended = true;
                    self.buffered.clear();
                    return Some((Err(e), self));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffered.extend_from_slice(&data),
                    Err(frame) => {
                        let Ok(mut trailers) = frame.into_trailers() else {
                            continue;
                        };
                        reveal_status(&self.personal, &mut trailers).await;
                        if !self.buffered.is_empty() {
                            // A truncated frame before the trailers: nothing may follow them.
                            tracing::warn!(
                                bytes = self.buffered.len(),
                                "trailers arrived inside a gRPC frame; the partial frame is dropped"
                            );
                            self.buffered.clear();
                        }
                        self.ended = true;
                        return Some((Ok(Frame::trailers(trailers)), self));
                    }
                },
            }
        }
    }
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for RevealService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let personal = self.personal.clone();
        let output = output_of(req.uri().path());
        let (parts, body) = req.into_parts();
        let mut req = http::Request::from_parts(parts, refusing_tokens(body));
        req.extensions_mut().insert(personal.clone());
        Box::pin(async move {
            let response = inner.call(req).await?;
            let (mut parts, body) = response.into_parts();
            reveal_status(&personal, &mut parts.headers).await;
            let Some(output) = output else {
                return Ok(http::Response::from_parts(parts, body));
            };
            let frames = Frames {
                body,
                buffered: BytesMut::new(),
                personal,
                output,
                ended: false,
            };
            let stream = futures::stream::unfold(frames, Frames::next);
            let body = tonic::body::Body::new(http_body_util::StreamBody::new(stream));
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

#[cfg(test)]
mod tests {
    use flotilla_proto::compliance::v1 as cpb;
    use flotilla_proto::monitoring::v1 as mon;

    use super::*;

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        out.extend_from_slice(msg);
        out
    }

    fn unframed(mut body: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while body.len() >= 5 {
            let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
            out.push(body[5..5 + len].to_vec());
            body = &body[5 + len..];
        }
        out
    }

    /// Runs `chunks` (then `trailers`) through the reveal of a response of `path`.
    async fn through(
        personal: Arc<PersonalData>,
        path: &str,
        chunks: Vec<Vec<u8>>,
        trailers: http::HeaderMap,
    ) -> (Vec<u8>, Option<http::HeaderMap>) {
        let mut frames: Vec<Result<Frame<Bytes>, tonic::Status>> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from(c))))
            .collect();
        frames.push(Ok(Frame::trailers(trailers)));
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        let f = Frames {
            body,
            buffered: BytesMut::new(),
            personal,
            output: output_of(path).expect("a declared method"),
            ended: false,
        };
        let mut out = tonic::body::Body::new(http_body_util::StreamBody::new(
            futures::stream::unfold(f, Frames::next),
        ));
        let mut data = Vec::new();
        let mut trailers = None;
        while let Some(frame) = out.frame().await {
            let frame = frame.expect("frame");
            match frame.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(f) => trailers = f.into_trailers().ok(),
            }
        }
        (data, trailers)
    }

    #[tokio::test]
    async fn answers_are_revealed_frame_by_frame_however_they_are_split() {
        let personal = PersonalData::in_memory();
        let zoe = personal.seal("zoe@example.com").await.expect("sealed");
        let erin = personal.seal("erin@bank.example").await.expect("sealed");
        let t = |id: &str, reporter: &str| mon::Ticket {
            ticket_id: id.into(),
            reporter: reporter.into(),
            summary: format!("reported by {reporter}"),
            labels: vec![reporter.to_owned(), "plain".into()],
            ..Default::default()
        };
        let mut body = framed(&t("INC-1", &zoe).encode_to_vec());
        body.extend(framed(&t("INC-2", "nobody").encode_to_vec()));
        // Split at every awkward place: inside a header, inside a token.
        let chunks: Vec<Vec<u8>> = body.chunks(7).map(<[u8]>::to_vec).collect();
        let mut trailers = http::HeaderMap::new();
        tonic::Status::permission_denied(format!("{erin} may not approve"))
            .add_header(&mut trailers)
            .expect("header");
        let (data, trailers) = through(
            personal.clone(),
            "/flotilla.monitoring.v1.MonitoringService/RecordTicket",
            chunks,
            trailers,
        )
        .await;
        let messages: Vec<mon::Ticket> = unframed(&data)
            .iter()
            .map(|m| mon::Ticket::decode(m.as_slice()).expect("a ticket"))
            .collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], t("INC-1", "zoe@example.com"));
        assert_eq!(messages[1], t("INC-2", "nobody"));
        let status = tonic::Status::from_header_map(&trailers.expect("trailers")).expect("status");
        assert_eq!(status.message(), "erin@bank.example may not approve");

        // Erased: the placeholder, in every place.
        let id = personal
            .find("zoe@example.com")
            .await
            .expect("find")
            .expect("live");
        personal.erase(id).await.expect("erase");
        let (data, _) = through(
            personal,
            "/flotilla.monitoring.v1.MonitoringService/RecordTicket",
            vec![framed(&t("INC-1", &zoe).encode_to_vec())],
            http::HeaderMap::new(),
        )
        .await;
        let shown = mon::Ticket::decode(unframed(&data)[0].as_slice()).expect("a ticket");
        let ph = flotilla_core::personal::placeholder(id);
        assert_eq!(shown, t("INC-1", &ph));
    }

    #[tokio::test]
    async fn replayed_cloud_events_stay_as_the_buses_carried_them() {
        let personal = PersonalData::in_memory();
        let erin = personal.seal("erin@bank.example").await.expect("sealed");
        let replayed = cpb::ReplayedEvent {
            index: 3,
            service: "catalog".into(),
            actor: erin.clone(),
            event: Some(cpb::CloudEvent {
                id: "e-1".into(),
                extensions: [("actor".to_owned(), erin.clone())].into_iter().collect(),
                data: erin.clone().into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (data, _) = through(
            personal,
            "/flotilla.compliance.v1.ComplianceService/Replay",
            vec![framed(&replayed.encode_to_vec())],
            http::HeaderMap::new(),
        )
        .await;
        let back = cpb::ReplayedEvent::decode(unframed(&data)[0].as_slice()).expect("decodes");
        assert_eq!(back.actor, "erin@bank.example", "the revealed actor");
        assert_eq!(back.event, replayed.event, "the CloudEvent verbatim");
    }
}
