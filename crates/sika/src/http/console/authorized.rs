//! The console's preamble as types: a handler that takes an
//! [`Authorized<C>`] (or an [`AuthorizedForm<C, F>`]) runs only for a full
//! session whose role has capability `C` (and, for a form, a valid CSRF
//! token); a refusal is audited and answered before the handler's body is
//! reached. Handlers return `Result<Response, ConsoleError>`, so a store or
//! auth failure is `?`, not a repeated `Err(e) => return internal(e)`.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::guard::Ctx;
use crate::auth::Role;
use crate::auth::roles::may;
use crate::auth::session::Current;
use crate::http::AppState;
use crate::http::error::AppError;

/// What a role may do in the console, named once.
pub trait Capability {
    const ROLES: &'static [Role];
}

macro_rules! capabilities {
    ($($name:ident = $roles:expr;)*) => {
        $(
            #[doc = concat!("`", stringify!($roles), "`")]
            pub struct $name;
            impl Capability for $name {
                const ROLES: &'static [Role] = $roles;
            }
        )*
    };
}

capabilities! {
    SignedIn = may::SIGN_IN;
    ManageUsers = may::MANAGE_USERS;
    ManageApiKeys = may::MANAGE_API_KEYS;
    ManageSettings = may::MANAGE_SETTINGS;
    ApprovePayouts = may::APPROVE_PAYOUTS;
    CreatePayouts = may::CREATE_PAYOUTS;
    ReadPayouts = may::READ_PAYOUTS;
    RevealAccounts = may::REVEAL_ACCOUNTS;
    ReadPayments = may::READ_PAYMENTS;
    CreatePayments = may::CREATE_PAYMENTS;
    ReadAudit = may::READ_AUDIT;
    Refund = may::REFUND;
    AnswerChargebacks = may::ANSWER_CHARGEBACKS;
    ApproveChargebackAnswers = may::APPROVE_CHARGEBACK_ANSWERS;
    ReadEvidence = may::READ_EVIDENCE;
    ReadCards = may::READ_CARDS;
    RevealCards = may::REVEAL_CARDS;
    ManageCards = may::MANAGE_CARDS;
    ApproveCardFunding = may::APPROVE_CARD_FUNDING;
}

/// A console handler's failure: a response already decided (sign in again,
/// 403 after an audited refusal), or an error answered the one way
/// `AppError` answers (an internal one logged, a generic 500 shown).
#[derive(Debug)]
pub enum ConsoleError {
    Respond(Response),
    App(AppError),
}

impl ConsoleError {
    /// Any other failure: logged, answered with the generic 500.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ConsoleError::App(AppError::Internal(Box::new(e)))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Respond(r) => r,
            ConsoleError::App(e) => e.into_response(),
        }
    }
}

impl From<Response> for ConsoleError {
    fn from(r: Response) -> Self {
        ConsoleError::Respond(r)
    }
}

impl From<AppError> for ConsoleError {
    fn from(e: AppError) -> Self {
        ConsoleError::App(e)
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        ConsoleError::App(AppError::Internal(Box::new(e)))
    }
}

impl From<crate::auth::AuthError> for ConsoleError {
    fn from(e: crate::auth::AuthError) -> Self {
        ConsoleError::App(AppError::Internal(Box::new(e)))
    }
}

/// Proof that the request comes from a full session whose role has `C`.
pub struct Authorized<C> {
    pub current: Current,
    pub ctx: Ctx,
    capability: PhantomData<fn() -> C>,
}

impl<C: Capability> FromRequestParts<AppState> for Authorized<C> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
        let current = state.signed_in(&ctx).await?;
        let what = ctx.path.split('?').next().unwrap_or("/").to_string();
        state.require(&current, &ctx, C::ROLES, &what).await?;
        Ok(Authorized { current, ctx, capability: PhantomData })
    }
}

/// A form that carries the session's CSRF token.
pub trait CsrfForm {
    fn csrf_token(&self) -> &str;
}

/// `CsrfForm` for forms whose token is their `csrf_token` field.
macro_rules! csrf_forms {
    ($($form:ty),* $(,)?) => {
        $(
            impl $crate::http::console::authorized::CsrfForm for $form {
                fn csrf_token(&self) -> &str {
                    &self.csrf_token
                }
            }
        )*
    };
}
pub(super) use csrf_forms;

/// An [`Authorized<C>`] whose form `F` also carried the session's CSRF token
/// (and came from our own origin).
pub struct AuthorizedForm<C, F> {
    pub current: Current,
    pub ctx: Ctx,
    pub form: F,
    capability: PhantomData<fn() -> C>,
}

impl<C: Capability, F: DeserializeOwned + CsrfForm + Send> FromRequest<AppState> for AuthorizedForm<C, F> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Authorized { current, ctx, .. } = Authorized::<C>::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<F>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        state.check_csrf(&current, &ctx, form.csrf_token()).await?;
        Ok(AuthorizedForm { current, ctx, form, capability: PhantomData })
    }
}

/// A fresh step-up code, or why not: `Ok(Err(why))` is a refused code, for the
/// page to say; an ended session (five wrong codes) is answered here — sign in again.
pub async fn fresh_code(
    state: &AppState,
    c: &Current,
    ctx: &Ctx,
    typed: &str,
) -> Result<Result<crate::auth::login::FreshCode, String>, ConsoleError> {
    use crate::auth::login::StepUp;
    match state.auth.step_up(c, &ctx.ip, &ctx.user_agent, typed).await? {
        StepUp::Passed(code) => Ok(Ok(code)),
        StepUp::Refused { left } => {
            Ok(Err(format!("The authenticator code is not right, or was already used ({left} tries left).")))
        }
        StepUp::SessionEnded => Err(ConsoleError::Respond(axum::response::Redirect::to("/login").into_response())),
    }
}
