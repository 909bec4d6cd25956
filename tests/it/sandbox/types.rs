//! The sandbox and veo3-types agree: requests built by veo3-types are accepted, and every
//! answer and callback the sandbox emits, in both shapes, decodes with veo3-types.

use std::time::Duration;

use serde_json::json;
use veo3_types::{
    ApiCode, AspectRatio, Callback, Credits, Endpoint, Envelope, ExtendRequest, GenerateRequest,
    Hd1080pResult, Model, TaskCreated, TaskRecord, TaskState, Upgrade4kRequest, Upgrade4kResult,
};

use super::*;

fn envelope(answer: &crate::support::http::Answer) -> Envelope {
    Envelope::from_slice(&answer.body).expect("an envelope")
}

#[test]
fn every_client_endpoint_has_a_sandbox_route_with_the_same_path() {
    for endpoint in Endpoint::ALL {
        let route = Route::ALL
            .into_iter()
            .find(|r| r.endpoint() == Some(endpoint))
            .unwrap_or_else(|| panic!("no route for {endpoint}"));
        assert_eq!(route.path(), Some(endpoint.path()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veo3_types_decodes_every_answer_in_both_shapes() {
    for shape in [Shape::Modern, Shape::Legacy] {
        let receiver = Receiver::start(Vec::new()).await;
        let (sandbox, api) = start(frozen().shape(shape)).await;
        let request = GenerateRequest::builder("A red fox")
            .model(Model::Veo3Fast)
            .aspect_ratio(AspectRatio::Portrait)
            .call_back_url(receiver.url.clone())
            .build()
            .expect("valid request");
        let body = serde_json::to_value(&request).expect("serializes");
        let created = api.post(Endpoint::Generate.path(), &body).await;
        let created = envelope(&created);
        assert_eq!(created.code, ApiCode::Success);
        let id = TaskCreated::from_data(&created.data)
            .expect("TaskCreated")
            .task_id;

        let running = envelope(&api.record(&id).await);
        let record = TaskRecord::from_data(&running.data).expect("TaskRecord");
        assert_eq!(record.state, TaskState::Generating, "{shape:?}");
        assert!(record.complete_time.is_none());

        sandbox.advance(Duration::from_secs(30));
        let done = envelope(&api.record(&id).await);
        let record = TaskRecord::from_data(&done.data).expect("TaskRecord");
        assert_eq!(record.state, TaskState::Success, "{shape:?}");
        assert_eq!(record.task_id, id);
        assert_eq!(record.video_urls().len(), 1);
        assert!(record.create_time.is_some() && record.complete_time.is_some());
        let origin = record.response.as_ref().and_then(|r| r.origin_urls.clone());
        assert_eq!(origin.map(|u| u.len()), Some(1), "9:16 has origin URLs");

        let callback = receiver.wait_for(1).await.remove(0);
        let callback = Callback::from_slice(&callback.body).expect("Callback");
        assert!(callback.is_success());
        assert_eq!(callback.task_id.as_deref(), Some(id.as_str()));
        assert_eq!(callback.result_urls(), record.video_urls());

        // 1080p: processing, then the singular URL.
        let hd_path = format!("{}?taskId={id}&index=0", Endpoint::Hd1080p.path());
        let processing = envelope(&api.get(&hd_path).await);
        assert!(veo3_types::is_processing_message(&processing.msg));
        sandbox.advance(Duration::from_secs(90));
        let ready = envelope(&api.get(&hd_path).await);
        assert!(Hd1080pResult::from_data(&ready.data).is_ok());

        // 4K: 200 with nulls, then 422 carrying URLs once done.
        let upgrade = serde_json::to_value(
            Upgrade4kRequest::new(id.clone()).call_back_url(receiver.url.clone()),
        )
        .expect("serializes");
        let accepted = envelope(&api.post(Endpoint::Upgrade4k.path(), &upgrade).await);
        assert!(
            !Upgrade4kResult::from_data(&accepted.data)
                .expect("4K")
                .is_ready()
        );
        sandbox.advance(Duration::from_secs(300));
        let again = envelope(&api.post(Endpoint::Upgrade4k.path(), &upgrade).await);
        assert_eq!(again.code, ApiCode::Unprocessable);
        assert!(
            Upgrade4kResult::from_data(&again.data)
                .expect("4K")
                .is_ready()
        );
        let callback = receiver.wait_for(2).await.remove(1);
        assert!(
            Callback::from_slice(&callback.body)
                .expect("4K callback")
                .is_success()
        );

        // Extend: the stitched video is what the user wants.
        let extend = serde_json::to_value(ExtendRequest::new(id.clone(), "more")).expect("json");
        let extended = envelope(&api.post(Endpoint::Extend.path(), &extend).await);
        let extended = TaskCreated::from_data(&extended.data)
            .expect("created")
            .task_id;
        assert!(sandbox.complete_now(&extended));
        let record = TaskRecord::from_data(&envelope(&api.record(&extended).await).data)
            .expect("TaskRecord");
        let full = record
            .response
            .as_ref()
            .and_then(|r| r.full_result_urls.clone());
        assert_eq!(Some(record.video_urls().to_vec()), full);

        let credits = envelope(&api.get(Endpoint::Credits.path()).await);
        assert!(Credits::from_data(&credits.data).expect("credits").0 > 0);
        let link = api
            .post(
                Endpoint::DownloadUrl.path(),
                &json!({"url": record.video_urls()[0]}),
            )
            .await;
        assert!(envelope(&link).download_link().is_ok());

        // Failures decode too.
        sandbox.script_outcome(Route::Generate, Outcome::GenerationFailed);
        let failed = api.generate(&body).await;
        sandbox.complete_now(&failed);
        let record =
            TaskRecord::from_data(&envelope(&api.record(&failed).await).data).expect("TaskRecord");
        assert_eq!(record.state, TaskState::GenerationFailed);
        assert_eq!(record.error_code, Some(501));
        let callback = receiver.wait_for(3).await.remove(2);
        let callback = Callback::from_slice(&callback.body).expect("failure callback");
        assert!(!callback.is_success());
    }
}
