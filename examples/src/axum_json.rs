//! The `axum_json` example's app: a to-do list as a JSON API, an axum
//! `Router` as axum users write it — percore-http serves it unchanged.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | `{"name":"todos","core":N}`: the core that answered |
//! | `GET /todos` | `200`, every to-do, by id |
//! | `POST /todos` `{"title":"…"}` | `201`, the new to-do (`Location: /todos/ID`) |
//! | `GET /todos/ID` | `200`, the to-do, or `404` |
//! | `PATCH /todos/ID` `{"title":"…","done":true}` (either field) | `200`, the to-do changed, or `404` |
//! | `DELETE /todos/ID` | `204`, or `404` |
//!
//! A to-do is `{"id":1,"title":"…","done":false}`; an error is
//! `{"error":"…"}` with a 4xx status (bad JSON, a title empty or longer
//! than [`MAX_TITLE`] bytes, an id that is not a number, a full list).
//!
//! The list is shared by every core, behind one `Mutex` held for a map
//! operation only — never across an `.await` — as an axum app would keep
//! it; state of one core only, with no lock at all, is the `hyper`
//! example's (an axum `Router` wants its state `Send + Sync`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The longest title accepted, in bytes.
pub const MAX_TITLE: usize = 200;
/// The most to-dos the list holds; past that, `POST` is refused (`507`).
pub const MAX_TODOS: usize = 10_000;

/// One to-do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    /// Its number, given by the list: 1, 2, 3…
    pub id: u64,
    /// What to do.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
}

/// The body of `POST /todos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    title: String,
    #[serde(default)]
    done: bool,
}

/// The body of `PATCH /todos/ID`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    title: Option<String>,
    done: Option<bool>,
}

/// The list, shared by every core.
#[derive(Debug, Default)]
struct Todos {
    next_id: u64,
    by_id: BTreeMap<u64, Todo>,
}

type Shared = Arc<Mutex<Todos>>;

fn lock(todos: &Shared) -> MutexGuard<'_, Todos> {
    // A handler that panicked left the map whole (each change is one map
    // operation), so a poisoned lock is still usable.
    todos
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The app: the routes above over an empty list. Clones share the list.
pub fn app() -> Router {
    Router::new()
        .route("/", get(about))
        .route("/todos", get(list).post(create))
        .route("/todos/{id}", get(read).patch(change).delete(remove))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .with_state(Shared::default())
}

/// An error answer: a status and `{"error": "…"}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 });
        (self.0, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError(rejection.status(), rejection.body_text())
    }
}

fn not_found(id: u64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no to-do {id}"))
}

fn check_title(title: &str) -> Result<(), ApiError> {
    if title.trim().is_empty() || title.len() > MAX_TITLE {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a title is 1 to {MAX_TITLE} bytes, not only spaces"),
        ));
    }
    Ok(())
}

async fn about() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": "todos", "core": percore::current_core() }))
}

async fn list(State(todos): State<Shared>) -> Json<Vec<Todo>> {
    Json(lock(&todos).by_id.values().cloned().collect())
}

async fn create(
    State(todos): State<Shared>,
    new: Result<Json<NewTodo>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(new) = new?;
    check_title(&new.title)?;
    let mut todos = lock(&todos);
    if todos.by_id.len() >= MAX_TODOS {
        return Err(ApiError(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("the list is full ({MAX_TODOS} to-dos): delete some first"),
        ));
    }
    todos.next_id += 1;
    let todo = Todo {
        id: todos.next_id,
        title: new.title,
        done: new.done,
    };
    todos.by_id.insert(todo.id, todo.clone());
    let location = format!("/todos/{}", todo.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(todo),
    ))
}

async fn read(
    State(todos): State<Shared>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<Todo>, ApiError> {
    let Path(id) = id?;
    let todo = lock(&todos).by_id.get(&id).cloned();
    todo.map(Json).ok_or_else(|| not_found(id))
}

async fn change(
    State(todos): State<Shared>,
    id: Result<Path<u64>, PathRejection>,
    change: Result<Json<Change>, JsonRejection>,
) -> Result<Json<Todo>, ApiError> {
    let Path(id) = id?;
    let Json(change) = change?;
    if let Some(title) = &change.title {
        check_title(title)?;
    }
    let mut todos = lock(&todos);
    let todo = todos.by_id.get_mut(&id).ok_or_else(|| not_found(id))?;
    if let Some(title) = change.title {
        todo.title = title;
    }
    if let Some(done) = change.done {
        todo.done = done;
    }
    Ok(Json(todo.clone()))
}

async fn remove(
    State(todos): State<Shared>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    match lock(&todos).by_id.remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(not_found(id)),
    }
}
