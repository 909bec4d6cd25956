//! `veo3 upload` and the local images of `veo3 generate --image`: files are streamed to the
//! upload host by the SDK (checked first), and the hosted URLs are printed.

use std::path::Path;

use serde_json::json;
use veo3_core::Veo3Api;
use veo3_types::{GenerateRequest, GenerateWithImages, ImageInput, UploadOptions, UploadedFile};

use crate::args::UploadArgs;
use crate::error::CliError;
use crate::session::Session;

impl Session {
    pub(crate) async fn upload(&self, args: &UploadArgs) -> Result<(), CliError> {
        let mut options = UploadOptions::new(&args.upload_path);
        if let Some(name) = &args.file_name {
            options = options.file_name(name);
        }
        options.validate()?;
        let uploaded = match ImageInput::parse(&args.source) {
            ImageInput::Url(url) => self.api().upload_url(&url, &options).await?,
            _ => {
                let path = Path::new(&args.source);
                // Named here, before any request, when it is missing or unreadable.
                veo3_core::LocalFile::inspect(path)?;
                self.api().upload_file(path, &options).await?
            }
        };
        let url = uploaded.download_url.clone();
        self.progress.clear();
        self.printer.result(upload_json(&uploaded), || url);
        Ok(())
    }

    /// Uploads the local images of `pending` (the core's flow: checks, uploads in order with
    /// progress, events), prints each hosted URL, and returns the request to submit.
    pub(crate) async fn upload_images(
        &self,
        pending: &GenerateWithImages,
    ) -> Result<GenerateRequest, CliError> {
        let request = veo3_core::upload_images(
            self.api(),
            pending,
            &UploadOptions::default(),
            self.api().effects(),
        )
        .await?;
        for (image, url) in pending.images.iter().zip(&request.image_urls) {
            if image.is_local() {
                self.printer
                    .note(format!("uploaded {}: {url}", image.name()));
            }
        }
        Ok(request)
    }
}

fn upload_json(file: &UploadedFile) -> serde_json::Value {
    json!({
        "downloadUrl": file.download_url,
        "fileName": file.file_name,
        "filePath": file.file_path,
        "fileSize": file.file_size,
        "mimeType": file.mime_type,
        "uploadedAt": file.uploaded_at.map(|t| t.epoch_millis()),
    })
}
