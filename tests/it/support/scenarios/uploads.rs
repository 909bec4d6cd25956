//! The upload rows of the shared scenario table: local images uploaded and used, streams of
//! several MiB arriving intact, retries that re-open the file, and every refusal that must
//! happen before a request is sent.

use veo3_core::download::ProgressMeter;
use veo3_core::{Error, Event};
use veo3_sandbox::{Fault, Route, Shape};
use veo3_types::{
    GenerateRequest, GenerationType, ImageProblem, MAX_IMAGE_BYTES, Model, UploadOptions,
    ValidationError,
};

use super::{BoxFuture, Ctx, Scenario, frozen_sandbox, served};

/// The upload rows.
pub(super) fn rows() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "local PNG and JPEG are uploaded and the task carries exactly their URLs",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: local_images_are_uploaded_then_used,
        },
        Scenario {
            name: "a multi-MiB file is streamed and the host stores the same bytes",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: large_file_streams_intact,
        },
        Scenario {
            name: "a streamed upload reports its bytes up to the file size, paced, per attempt",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: upload_progress_reaches_the_file_size,
        },
        Scenario {
            name: "an upload cut mid-stream is sent again from the file and stored once",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: upload_cut_mid_stream,
        },
        Scenario {
            name: "an upload answered 5xx or cut is sent again from the file",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: retried_upload_reopens_the_file,
        },
        Scenario {
            name: "bytes and URL uploads store the same bytes",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: bytes_and_url_uploads,
        },
        Scenario {
            name: "bad images are refused before any request, naming the file",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: bad_images_are_refused_before_sending,
        },
        Scenario {
            name: "a wrong key is refused by the upload host, not retried",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().key("sk-the-only-valid-key"),
            run: upload_with_wrong_key,
        },
    ]
}

/// A small PNG: the signature, then arbitrary bytes (the host does not decode images).
pub(crate) fn png(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

/// A small JPEG: the SOI and APP0 markers, then arbitrary bytes.
pub(crate) fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed)));
    bytes
}

/// `len` bytes that are not an image and repeat no short pattern.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn name(ctx: &Ctx) -> &'static str {
    ctx.flows.name()
}

/// The image URLs the sandbox recorded for `task_id` (from its `paramJson`).
async fn recorded_image_urls(ctx: &Ctx, task_id: &str) -> Vec<String> {
    let record = ctx
        .flows
        .record_info(task_id.to_owned())
        .await
        .unwrap_or_else(|e| panic!("{}: record-info: {e}", name(ctx)));
    let param: serde_json::Value =
        serde_json::from_str(record.param_json.as_deref().expect("paramJson")).expect("JSON");
    param["imageUrls"]
        .as_array()
        .map(|urls| {
            urls.iter()
                .map(|u| u.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn local_images_are_uploaded_then_used(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let first = ctx.path("first frame.png");
        let last = ctx.path("last.jpg");
        std::fs::write(&first, png(1, 5000)).unwrap();
        std::fs::write(&last, jpeg(2, 7000)).unwrap();

        // First and last frames: one local PNG, one local JPEG.
        let pending = GenerateRequest::builder("The cat walks from left to right")
            .model(Model::Veo3Fast)
            .generation_type(GenerationType::FirstAndLastFrames)
            .image(first.clone())
            .image(last.clone())
            .build_with_images()
            .unwrap();
        let created = ctx
            .flows
            .generate_with_images(pending, UploadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: generate_with_images: {e}", name(ctx)));
        let urls = recorded_image_urls(ctx, &created.task_id).await;
        assert_eq!(urls.len(), 2, "{}", name(ctx));
        for (url, path) in urls.iter().zip([&first, &last]) {
            assert!(url.starts_with(ctx.sandbox.files_url()), "{url}");
            assert_eq!(served(url).await, std::fs::read(path).unwrap(), "{url}");
        }
        // The client fetching an uploaded file sends no key to the file host (checked after
        // every scenario by `run_scenario`).
        ctx.download_and_verify(&urls[0], "first-again.png").await;

        // Image-to-video with one local JPEG and the type left to the server, mixed with
        // nothing else; then a URL and a local file mixed, in order.
        let pending = GenerateRequest::builder("The cat blinks")
            .image(last.clone())
            .build_with_images()
            .unwrap();
        let created = ctx
            .flows
            .generate_with_images(pending, UploadOptions::default())
            .await
            .unwrap();
        let single = recorded_image_urls(ctx, &created.task_id).await;
        assert_eq!(single.len(), 1);
        assert_eq!(served(&single[0]).await, std::fs::read(&last).unwrap());
        let hosted = urls[1].clone();
        let pending = GenerateRequest::builder("The cat turns")
            .generation_type(GenerationType::FirstAndLastFrames)
            .image(hosted.as_str())
            .image(first.clone())
            .build_with_images()
            .unwrap();
        let created = ctx
            .flows
            .generate_with_images(pending, UploadOptions::default())
            .await
            .unwrap();
        let mixed = recorded_image_urls(ctx, &created.task_id).await;
        assert_eq!(mixed[0], hosted, "a URL input is sent as is, in its place");
        assert_eq!(served(&mixed[1]).await, std::fs::read(&first).unwrap());
        let stats = ctx.sandbox.stats();
        assert_eq!(
            stats.requests(Route::Upload),
            4,
            "one upload per local image"
        );
        assert_eq!(stats.tasks_created, 3);
    })
}

fn large_file_streams_intact(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let path = ctx.path("big.bin");
        let bytes = noise(6 * 1024 * 1024 + 123);
        std::fs::write(&path, &bytes).unwrap();
        let uploaded = ctx
            .flows
            .upload_file(path, UploadOptions::new("tests/big").file_name("big.bin"))
            .await
            .unwrap_or_else(|e| panic!("{}: upload_file: {e}", name(ctx)));
        assert_eq!(uploaded.file_size, Some(bytes.len() as i64));
        assert_eq!(uploaded.file_path.as_deref(), Some("tests/big/big.bin"));
        assert_eq!(uploaded.file_name.as_deref(), Some("big.bin"));
        assert!(
            served(&uploaded.download_url).await == bytes,
            "bytes differ"
        );
        assert_eq!(ctx.sandbox.stats().requests(Route::Upload), 1);
    })
}

/// The `(bytes, total)` of every upload progress event so far.
fn upload_progress(ctx: &Ctx) -> Vec<(u64, u64)> {
    let events = ctx.events.lock().expect("events");
    events
        .iter()
        .filter_map(|event| match event {
            Event::UploadProgress { bytes, total, .. } => Some((*bytes, *total)),
            _ => None,
        })
        .collect()
}

fn upload_progress_reaches_the_file_size(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let path = ctx.path("progress.bin");
        let len = 5 * 1024 * 1024 + 7;
        std::fs::write(&path, noise(len)).unwrap();
        let len = len as u64;
        let started = std::time::Instant::now();
        ctx.flows
            .upload_file(path.clone(), UploadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: upload_file: {e}", name(ctx)));
        let elapsed = started.elapsed();
        let progress = upload_progress(ctx);
        assert_eq!(
            progress.first(),
            Some(&(0, len)),
            "{}: starts at 0",
            name(ctx)
        );
        assert_eq!(
            progress.last(),
            Some(&(len, len)),
            "{}: ends at the size",
            name(ctx)
        );
        assert!(
            progress.windows(2).all(|pair| pair[0].0 <= pair[1].0),
            "{}: one attempt only grows: {progress:?}",
            name(ctx)
        );
        // One at the start, at most one per 100 ms, and the last one.
        let most = 3 + elapsed.as_millis() / ProgressMeter::EVERY.as_millis();
        assert!(
            progress.len() as u128 <= most,
            "{}: {} progress events in {elapsed:?} (at most {most})",
            name(ctx),
            progress.len()
        );

        // A retry streams the file again from its start, and reports it so.
        ctx.events.lock().expect("events").clear();
        ctx.sandbox.script_fault(Route::Upload, Fault::Http(503));
        ctx.flows
            .upload_file(path, UploadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: upload after a 503: {e}", name(ctx)));
        let progress = upload_progress(ctx);
        // At least two attempts (a third when the retry first meets the connection the 503
        // closed), each from the start of the file.
        let starts = progress.iter().filter(|(bytes, _)| *bytes == 0).count();
        assert!(starts >= 2, "{}: a retry: {progress:?}", name(ctx));
        assert_eq!(progress.last(), Some(&(len, len)), "{}", name(ctx));
    })
}

fn upload_cut_mid_stream(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        // The host closes the connection after the request head: far more than any socket
        // buffer of the file is still to be sent, so the first attempt is cut part-way (its
        // progress shows where), and the second must stream the file again from its start.
        let path = ctx.path("cut.bin");
        let bytes = noise(48 * 1024 * 1024);
        std::fs::write(&path, &bytes).unwrap();
        let len = bytes.len() as u64;
        ctx.sandbox.script_fault(Route::Upload, Fault::Drop);
        let uploaded = ctx
            .flows
            .upload_file(path, UploadOptions::new("tests/cut").file_name("cut.bin"))
            .await
            .unwrap_or_else(|e| panic!("{}: upload after a cut: {e}", name(ctx)));
        let progress = upload_progress(ctx);
        let second = progress
            .iter()
            .rposition(|(sent, _)| *sent == 0)
            .expect("a start");
        assert!(second > 0, "{}: two attempts: {progress:?}", name(ctx));
        let first_reached = progress[..second].iter().map(|(sent, _)| *sent).max();
        assert!(
            first_reached < Some(len),
            "{}: the first attempt was cut before the whole file went out: {progress:?}",
            name(ctx)
        );
        assert_eq!(progress.last(), Some(&(len, len)), "{}", name(ctx));
        assert_eq!(uploaded.file_size, Some(len as i64));
        assert!(
            served(&uploaded.download_url).await == bytes,
            "bytes differ"
        );
        // One cut attempt that stored nothing, one stored upload.
        assert_eq!(ctx.sandbox.stats().requests(Route::Upload), 2);
    })
}

fn retried_upload_reopens_the_file(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        // A streamed body cannot be replayed: the second attempt must read the file again
        // from its start, or the host would store a truncated or empty file.
        let path = ctx.path("retried.png");
        let bytes = png(3, 3 * 1024 * 1024);
        std::fs::write(&path, &bytes).unwrap();
        ctx.sandbox.script_fault(Route::Upload, Fault::Http(503));
        let uploaded = ctx
            .flows
            .upload_file(path.clone(), UploadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: upload after a 503: {e}", name(ctx)));
        assert!(
            served(&uploaded.download_url).await == bytes,
            "bytes differ"
        );
        assert_eq!(ctx.sandbox.stats().requests(Route::Upload), 2);

        ctx.sandbox.script_fault(Route::Upload, Fault::Drop);
        let uploaded = ctx
            .flows
            .upload_file(path, UploadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: upload after a cut: {e}", name(ctx)));
        assert!(
            served(&uploaded.download_url).await == bytes,
            "bytes differ"
        );
        assert_eq!(ctx.sandbox.stats().requests(Route::Upload), 4);
    })
}

fn bytes_and_url_uploads(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let image = png(4, 2000);
        let by_bytes = ctx
            .flows
            .upload_bytes(
                image.clone(),
                "pixel.png".to_owned(),
                UploadOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: upload_bytes: {e}", name(ctx)));
        assert_eq!(by_bytes.mime_type.as_deref(), Some("image/png"));
        assert_eq!(by_bytes.file_name.as_deref(), Some("pixel.png"));
        assert_eq!(served(&by_bytes.download_url).await, image);
        let by_url = ctx
            .flows
            .upload_url(
                by_bytes.download_url.clone(),
                UploadOptions::new("copies").file_name("copy.png"),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: upload_url: {e}", name(ctx)));
        assert_eq!(by_url.file_path.as_deref(), Some("copies/copy.png"));
        assert_eq!(served(&by_url.download_url).await, image);
    })
}

fn assert_image_refusal(ctx: &Ctx, result: Result<veo3_types::TaskCreated, Error>, file: &str) {
    let error = result.expect_err("refused");
    let text = error.to_string();
    assert!(
        matches!(error, Error::Validation(ValidationError::Image { .. })),
        "{}: {error:?}",
        name(ctx)
    );
    assert!(text.contains(file), "{}: {text:?} names {file}", name(ctx));
}

fn bad_images_are_refused_before_sending(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let good = ctx.path("good.png");
        std::fs::write(&good, png(5, 100)).unwrap();
        let text = ctx.path("notes.png");
        std::fs::write(&text, b"a shopping list, not a picture").unwrap();
        let missing = ctx.path("missing.png");
        let huge = ctx.path("huge.png");
        {
            // Sparse: the size check reads the metadata, never the content.
            let file = std::fs::File::create(&huge).unwrap();
            std::io::Write::write_all(&mut &file, &png(0, 0)).unwrap();
            file.set_len(MAX_IMAGE_BYTES + 1).unwrap();
        }
        let frames = |images: Vec<std::path::PathBuf>| {
            let mut builder = GenerateRequest::builder("The cat jumps")
                .generation_type(GenerationType::FirstAndLastFrames);
            for image in images {
                builder = builder.image(image);
            }
            builder
        };
        for (path, file, problem) in [
            (&text, "notes.png", ImageProblem::NotAnImage),
            (&missing, "missing.png", ImageProblem::NotFound),
            (
                &huge,
                "huge.png",
                ImageProblem::TooLarge {
                    size: MAX_IMAGE_BYTES + 1,
                    max: MAX_IMAGE_BYTES,
                },
            ),
        ] {
            // The bad image comes second: the good one before it must not be uploaded
            // either, because every image is checked before the first request.
            let pending = frames(vec![good.clone(), path.clone()])
                .build_with_images()
                .unwrap();
            let result = ctx
                .flows
                .generate_with_images(pending, UploadOptions::default())
                .await;
            if let Err(Error::Validation(ValidationError::Image { problem: got, .. })) = &result {
                assert_eq!(got, &problem, "{file}");
            }
            assert_image_refusal(ctx, result, file);
        }
        // A third image for first-and-last-frames is refused when the request is built.
        let error = frames(vec![good.clone(), good.clone(), good.clone()])
            .build_with_images()
            .unwrap_err();
        assert_eq!(error.field(), "imageUrls");
        assert!(error.to_string().contains("got 3"), "{error}");
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.requests(Route::Upload), 0, "nothing uploaded");
        assert_eq!(stats.tasks_created, 0, "nothing submitted");
    })
}

fn upload_with_wrong_key(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let path = ctx.path("a.png");
        std::fs::write(&path, png(6, 100)).unwrap();
        let error = ctx
            .flows
            .upload_file(path, UploadOptions::default())
            .await
            .expect_err("the upload host refuses the key");
        assert_eq!(
            error.code(),
            Some(veo3_types::ApiCode::Unauthorized),
            "{error}"
        );
        assert_eq!(
            ctx.sandbox.stats().requests(Route::Upload),
            1,
            "not retried"
        );
    })
}

/// Runs `generate_with_images` with two local images and a URL through a client `connect`
/// builds with a recording observer, and checks each upload is reported, in order, before the
/// submission.
pub(crate) async fn uploads_are_reported_in_order(connect: super::Connect) {
    use std::sync::{Arc, Mutex};
    use veo3_core::{Event, Observer};

    let sandbox = frozen_sandbox().start().await.expect("sandbox");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut setup = super::Setup::for_sandbox(sandbox.api_url());
    setup.upload_base_url = Some(sandbox.upload_url().to_owned());
    setup.observer = Observer::new(move |event: &Event| {
        sink.lock().expect("lock").push(event.clone());
    });
    let flows = connect(&setup);
    let dir = tempfile::tempdir().expect("dir");
    let first = dir.path().join("first.png");
    let last = dir.path().join("last.jpg");
    std::fs::write(&first, png(7, 300)).unwrap();
    std::fs::write(&last, jpeg(8, 400)).unwrap();
    let pending = GenerateRequest::builder("The cat looks up")
        .generation_type(GenerationType::Reference)
        .image(first.clone())
        .image("https://img.example.com/style.png")
        .image(last.clone())
        .build_with_images()
        .unwrap();
    let created = flows
        .generate_with_images(pending, UploadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", flows.name()));
    let events: Vec<Event> = seen.lock().expect("lock").clone();
    let summary: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            Event::Uploading { name, bytes, .. } => Some(format!("uploading {name} {bytes}")),
            Event::Uploaded { name, url, .. } => {
                assert!(url.starts_with(sandbox.files_url()), "{url}");
                Some(format!("uploaded {name}"))
            }
            Event::Submitted { task_id, .. } => {
                assert_eq!(task_id, &created.task_id);
                Some("submitted".to_owned())
            }
            _ => None,
        })
        .collect();
    let (first, last) = (first.display(), last.display());
    assert_eq!(
        summary,
        [
            format!("uploading {first} 308"),
            format!("uploaded {first}"),
            format!("uploading {last} 404"),
            format!("uploaded {last}"),
            "submitted".to_owned(),
        ],
        "{}",
        flows.name()
    );
}
