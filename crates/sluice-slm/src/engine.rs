//! Loading a GGUF file with mistral.rs and running requests on it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use mistralrs::{
    ChatCompletionChunkResponse, Model, RequestBuilder, Response, StopTokens, TextMessageRole,
};
use sluice_policy::{Message, Role};
use sluice_router::{
    Draft, FinishReason, LocalError, LocalEvent, LocalModel, LocalRequest, PromptStats,
};
use tokio::sync::mpsc;

use crate::states::StateShape;
use crate::stats::StatsRecorder;

/// Failure to load the model.
#[derive(Debug, thiserror::Error)]
pub enum SlmError {
    #[error("model file {path} does not exist")]
    Missing { path: PathBuf },
    #[error("model path {path} has no file name")]
    BadPath { path: PathBuf },
    #[error("cannot load model {path}: {message}")]
    Load { path: PathBuf, message: String },
}

/// A GGUF model loaded in-process on the CPU.
pub struct SlmModel {
    pub(crate) model: Arc<Model>,
    id: String,
    sha256: String,
    /// Where the hidden states sit in a raw-logits row; `None` when they are not returned.
    pub(crate) states: Option<StateShape>,
    /// The model's context length, as mistral.rs read it from the file.
    context: Option<u32>,
}

impl fmt::Debug for SlmModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlmModel").field("id", &self.id).finish()
    }
}

impl SlmModel {
    /// Load a GGUF file (tokenizer and chat template from its metadata). Never touches the network.
    pub async fn load(path: &Path) -> Result<Self, SlmError> {
        if !path.is_file() {
            return Err(SlmError::Missing {
                path: path.to_path_buf(),
            });
        }
        let bad = || SlmError::BadPath {
            path: path.to_path_buf(),
        };
        let file = path.file_name().and_then(|f| f.to_str()).ok_or_else(bad)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = dir.to_str().ok_or_else(bad)?.to_string();
        let load_err = |message: String| SlmError::Load {
            path: path.to_path_buf(),
            message,
        };
        let sha256 = crate::states::sha256_file(path).map_err(|e| load_err(e.to_string()))?;
        let states = crate::states::state_shape(path).map_err(load_err)?;
        let model = crate::load::build(dir, file.to_string())
            .await
            .map_err(|message| SlmError::Load {
                path: path.to_path_buf(),
                message,
            })?;
        let id = file
            .strip_suffix(".gguf")
            .unwrap_or(file)
            .to_ascii_lowercase();
        let context = model
            .max_sequence_length()
            .ok()
            .flatten()
            .and_then(|n| u32::try_from(n).ok());
        Ok(Self {
            model: Arc::new(model),
            id,
            sha256,
            states,
            context,
        })
    }

    /// SHA-256 (lowercase hex) of the model file, which a probe records.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

pub(crate) fn request(req: &LocalRequest, greedy: bool) -> RequestBuilder {
    let mut b = RequestBuilder::new().set_sampler_max_len(req.max_tokens as usize);
    for m in &req.messages {
        let role = match m.role {
            Role::System => TextMessageRole::System,
            Role::User => TextMessageRole::User,
            Role::Assistant => TextMessageRole::Assistant,
        };
        b = b.add_message(role, &m.content);
    }
    if !req.stop.is_empty() {
        b = b.set_sampler_stop_toks(StopTokens::Seqs(req.stop.clone()));
    }
    if !greedy {
        if let Some(t) = req.temperature.filter(|t| *t > 0.0) {
            b = b.set_sampler_temperature(f64::from(t)).set_sampler_topk(0);
            if let Some(p) = req.top_p {
                b = b.set_sampler_topp(f64::from(p));
            }
        }
    }
    b
}

fn finish_reason(s: Option<&str>) -> FinishReason {
    match s {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

pub(crate) fn gen_err(e: impl fmt::Display) -> LocalError {
    LocalError::Generation(e.to_string())
}

/// Forward mistral.rs responses of one request as `LocalEvent`s until it finishes.
async fn pump(
    model: Arc<Model>,
    builder: RequestBuilder,
    tx: mpsc::Sender<Result<LocalEvent, LocalError>>,
) {
    let mut stream = match model.stream_chat_request(builder).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Err(gen_err(e))).await;
            return;
        }
    };
    while let Some(resp) = stream.next().await {
        let event = match resp {
            Response::Chunk(ChatCompletionChunkResponse { choices, usage, .. }) => {
                let Some(choice) = choices.first() else {
                    continue;
                };
                if let Some(text) = choice.delta.content.as_ref().filter(|t| !t.is_empty()) {
                    if tx.send(Ok(LocalEvent::Delta(text.clone()))).await.is_err() {
                        return; // the caller went away; dropping the stream cancels the request
                    }
                }
                match &choice.finish_reason {
                    Some(reason) => {
                        let (p, c) = usage
                            .as_ref()
                            .map(|u| (u.prompt_tokens as u32, u.completion_tokens as u32))
                            .unwrap_or((0, 0));
                        Ok(LocalEvent::Done {
                            prompt_tokens: p,
                            completion_tokens: c,
                            finish: finish_reason(Some(reason)),
                        })
                    }
                    None => continue,
                }
            }
            Response::InternalError(e) | Response::ValidationError(e) => Err(gen_err(e)),
            Response::ModelError(e, _) => Err(gen_err(e)),
            _ => Err(gen_err(
                "the model engine sent a response of an unexpected kind",
            )),
        };
        let _ = tx.send(event).await;
        return;
    }
    let _ = tx
        .send(Err(gen_err("stream ended without a finish reason")))
        .await;
}

impl SlmModel {
    fn spawn(&self, builder: RequestBuilder) -> mpsc::Receiver<Result<LocalEvent, LocalError>> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(pump(self.model.clone(), builder, tx));
        rx
    }
}

#[async_trait::async_trait]
impl LocalModel for SlmModel {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn context_tokens(&self) -> Option<u32> {
        self.context
    }

    async fn draft(&self, req: LocalRequest) -> Result<Draft, LocalError> {
        let recorder = StatsRecorder::new();
        let builder = request(&req, true).add_logits_processor(Arc::new(recorder.clone()));
        let mut rx = self.spawn(builder);
        let mut pieces = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev? {
                LocalEvent::Delta(t) => pieces.push(t),
                LocalEvent::Done {
                    prompt_tokens,
                    completion_tokens,
                    finish,
                } => {
                    let mut tokens = recorder.take();
                    // One processor call per sampled token; never report more than were kept.
                    tokens.truncate(completion_tokens as usize);
                    return Ok(Draft {
                        text: pieces.concat(),
                        pieces,
                        prompt_tokens,
                        completion_tokens,
                        finish,
                        tokens,
                    });
                }
            }
        }
        Err(gen_err("generation ended without an answer"))
    }

    async fn stream(
        &self,
        req: LocalRequest,
    ) -> Result<BoxStream<'static, Result<LocalEvent, LocalError>>, LocalError> {
        let rx = self.spawn(request(&req, false));
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }

    async fn count_tokens(&self, messages: &[Message]) -> Result<u32, LocalError> {
        crate::prompt::count_tokens(&self.model, messages).await
    }

    async fn prompt_stats(&self, messages: &[Message]) -> Result<PromptStats, LocalError> {
        crate::prompt::prompt_stats(&self.model, self.states, messages).await
    }

    async fn label_logprobs(
        &self,
        messages: &[Message],
        labels: &[&str],
    ) -> Result<Vec<f64>, LocalError> {
        crate::prompt::label_logprobs(&self.model, self.states, messages, labels).await
    }
}
