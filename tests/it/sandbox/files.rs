//! The file host: real MP4s, Range, ETag, big bodies, uploads, Authorization sightings.

use serde_json::{Value, json};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_real_mp4s_with_exact_ranges_and_etags() {
    let (sandbox, api) = start(frozen()).await;
    let mut sizes = Vec::new();
    for resolution in ["720p", "1080p", "4k"] {
        let id = api
            .generate(&json!({"prompt": "p", "resolution": resolution}))
            .await;
        sandbox.complete_now(&id);
        let record = api.record(&id).await;
        assert_eq!(record.data()["response"]["resolution"], resolution);
        let url = urls(&record.data()["response"]["resultUrls"])[0].clone();
        let (status, headers, body) = fetch(&url).await;
        assert_eq!(status, 200);
        let boxes = mp4_boxes(&body).expect("a well-formed MP4");
        let kinds: Vec<&str> = boxes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"ftyp"));
        assert!(
            kinds.contains(&"moov") && kinds.contains(&"mdat"),
            "{kinds:?}"
        );
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        assert_eq!(headers["accept-ranges"], "bytes");
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        sizes.push(body.len());

        let http = reqwest::Client::new();
        let head = http.head(&url).send().await.expect("HEAD");
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            body.len().to_string().as_str()
        );
        for (range, start, end) in [
            ("bytes=0-99", 0, 100),
            ("bytes=100-", 100, body.len()),
            ("bytes=-64", body.len() - 64, body.len()),
        ] {
            let part = http
                .get(&url)
                .header("range", range)
                .send()
                .await
                .expect("range");
            assert_eq!(part.status(), 206, "{range}");
            assert_eq!(
                part.headers()["content-range"],
                format!("bytes {start}-{}/{}", end - 1, body.len()).as_str()
            );
            assert_eq!(
                &part.bytes().await.expect("body")[..],
                &body[start..end],
                "{range}"
            );
        }
        let unsatisfiable = http
            .get(&url)
            .header("range", format!("bytes={}-", body.len()))
            .send()
            .await
            .expect("416");
        assert_eq!(unsatisfiable.status(), 416);
        let cached = http
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("304");
        assert_eq!(cached.status(), 304);
    }
    sizes.dedup();
    assert_eq!(sizes.len(), 3, "each resolution serves its own file");
    assert!(sandbox.stats().file_auth_headers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_host_serves_big_bodies_and_notes_authorization_headers() {
    let (sandbox, _api) = start(frozen()).await;
    let http = reqwest::Client::new();
    let size = 3 * 65_536 + 17;
    let body = http
        .get(sandbox.big_file_url(size))
        .send()
        .await
        .expect("big");
    assert_eq!(body.headers()["content-length"], size.to_string().as_str());
    let body = body.bytes().await.expect("body");
    assert_eq!(body.len() as u64, size);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == veo3_sandbox::big_file_byte(i as u64))
    );
    let part = http
        .get(sandbox.big_file_url(size))
        .header("range", "bytes=70000-70009")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    let expected: Vec<u8> = (70_000..70_010).map(veo3_sandbox::big_file_byte).collect();
    assert_eq!(&part.bytes().await.expect("body")[..], &expected[..]);

    assert!(sandbox.stats().file_auth_headers.is_empty());
    http.get(sandbox.big_file_url(10))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        sandbox.stats().file_auth_headers,
        vec!["/big/10".to_owned()]
    );
    assert_eq!(sandbox.stats().file_requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_api_on_its_own_host_stores_files_on_the_file_host() {
    let (sandbox, on_api_host) = start(frozen()).await;
    // Uploads live on a host of their own, as kie's do: not on the API's.
    let api = Api::new(sandbox.upload_url(), KEY);
    assert_ne!(sandbox.upload_url(), sandbox.api_url());
    assert_ne!(sandbox.upload_url(), sandbox.files_url());
    let request: Value =
        serde_json::from_slice(&crate::support::fixture("request-upload-base64.json"))
            .expect("fixture");
    let uploaded = api.post("/api/file-base64-upload", &request).await;
    assert_eq!(uploaded.json["success"], true, "{:?}", uploaded.json);
    assert_eq!(uploaded.code(), 200);
    let data = uploaded.data();
    assert_eq!(data["fileName"], "pixel.png");
    assert_eq!(data["filePath"], "images/veo-inputs/pixel.png");
    assert_eq!(data["mimeType"], "image/png");
    let (status, headers, body) = fetch(data["downloadUrl"].as_str().expect("downloadUrl")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(&body[1..4], b"PNG");
    assert_eq!(data["fileSize"], body.len());

    // The service fetches a URL itself.
    let source = sandbox.big_file_url(1000);
    let fetched = api
        .post(
            "/api/file-url-upload",
            &json!({"fileUrl": source, "uploadPath": "inputs"}),
        )
        .await;
    assert_eq!(fetched.code(), 200, "{:?}", fetched.json);
    let (_, _, body) = fetch(fetched.data()["downloadUrl"].as_str().expect("url")).await;
    let expected: Vec<u8> = (0..1000).map(veo3_sandbox::big_file_byte).collect();
    assert_eq!(body, expected);

    // Multipart stream upload.
    let boundary = "XyZboundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadPath\"\r\n\r\nclips\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    form.extend_from_slice(&[0xff, 0xd8, 0xff, 0x00, 0x0d, 0x0a, 0x42]);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let streamed = api
        .http
        .post(format!("{}/api/file-stream-upload", api.base))
        .bearer_auth(KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .expect("answered");
    let streamed: Value =
        serde_json::from_slice(&streamed.bytes().await.expect("body")).expect("JSON");
    assert_eq!(streamed["code"], 200, "{streamed}");
    assert_eq!(streamed["data"]["fileName"], "a_b.jpg");
    let (_, _, body) = fetch(streamed["data"]["downloadUrl"].as_str().expect("url")).await;
    assert_eq!(body, [0xff, 0xd8, 0xff, 0x00, 0x0d, 0x0a, 0x42]);

    let missing = api
        .post("/api/file-base64-upload", &json!({"base64Data": "AAAA"}))
        .await;
    assert_eq!(
        (missing.code(), missing.json["success"].clone()),
        (400, json!(false))
    );
    assert!(missing.msg().contains("uploadPath"));
    let unauthorized = api
        .with_key(Some("nope"))
        .post("/api/file-base64-upload", &request)
        .await;
    assert_eq!(unauthorized.code(), 401);
    assert_eq!(sandbox.stats().requests(Route::Upload), 5);
    assert!(sandbox.stats().file_auth_headers.is_empty());

    let elsewhere = on_api_host
        .post("/api/file-base64-upload", &json!({"base64Data": "AAAA"}))
        .await;
    assert_eq!(elsewhere.code(), 404, "{:?}", elsewhere.json);
    let unknown = api.get("/api/v1/chat/credit").await;
    assert_eq!(
        (unknown.code(), unknown.json["success"].clone()),
        (404, json!(false)),
        "the upload host serves only the upload API"
    );
    let wrong_method = api.get("/api/file-base64-upload").await;
    assert_eq!(wrong_method.code(), 405, "{:?}", wrong_method.json);
}
