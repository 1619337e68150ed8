//! `WatchDeployment`: the deployment now, then again after every change the state takes, until
//! it is over (the stream then ends). A client that stops reading ends the watch.

use std::pin::Pin;
use std::sync::Arc;

use flotilla_proto::orchestration::v1 as pb;
use tonic::Status;
use uuid::Uuid;

use crate::app::OrchestrationApp;
use crate::messages::deployment_pb;

type Watch = Pin<Box<dyn futures::Stream<Item = Result<pb::Deployment, Status>> + Send>>;

pub(super) fn deployment(app: Arc<OrchestrationApp>, id: Uuid) -> Watch {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut changes = app.watch_position();
        let mut last: Option<pb::Deployment> = None;
        loop {
            let now = app.query(|o| {
                o.deployments
                    .get(&id)
                    .map(|d| (deployment_pb(d), d.status.is_over()))
            });
            let Some((d, over)) = now else { return };
            if last.as_ref() != Some(&d) {
                if tx.send(Ok(d.clone())).await.is_err() {
                    return;
                }
                last = Some(d);
            }
            if over {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
