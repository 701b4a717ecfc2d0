//! Authorization guards for resolvers.
//!
//! Staff operations take `#[graphql(guard = "RoleGuard::staff()")]`; resolvers that
//! take an id load the owner and call [`Viewer::ensure_owns`](crate::auth::Viewer::ensure_owns),
//! which answers `NOT_FOUND` for someone else's object exactly as for a missing one.

use async_graphql::{Context, Guard};
use emporium_domain::user::Role;

use super::ContextExt;
use crate::error::ApiError;

fn rank(role: Role) -> u8 {
    match role {
        Role::Customer => 0,
        Role::Staff => 1,
        Role::Admin => 2,
    }
}

/// Requires a signed-in viewer with at least a role.
#[derive(Debug, Clone, Copy)]
pub struct RoleGuard {
    at_least: Role,
}

impl RoleGuard {
    /// Any signed-in user.
    #[must_use]
    pub fn signed_in() -> Self {
        Self {
            at_least: Role::Customer,
        }
    }

    /// Staff or admin.
    #[must_use]
    pub fn staff() -> Self {
        Self {
            at_least: Role::Staff,
        }
    }

    /// Admin only.
    #[must_use]
    pub fn admin() -> Self {
        Self {
            at_least: Role::Admin,
        }
    }

    /// The guard's decision for `viewer_role` (`None`: anonymous).
    ///
    /// # Errors
    /// `UNAUTHENTICATED` when anonymous, `FORBIDDEN` when the role is too low.
    pub fn decide(&self, viewer_role: Option<Role>) -> Result<(), ApiError> {
        match viewer_role {
            None => Err(ApiError::Unauthenticated),
            Some(role) if rank(role) >= rank(self.at_least) => Ok(()),
            Some(_) => Err(ApiError::Forbidden),
        }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let role = ctx.request_context()?.viewer.map(|v| v.role);
        Ok(self.decide(role)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_rank_customer_staff_admin() {
        let staff = RoleGuard::staff();
        assert!(matches!(staff.decide(None), Err(ApiError::Unauthenticated)));
        assert!(matches!(
            staff.decide(Some(Role::Customer)),
            Err(ApiError::Forbidden)
        ));
        assert!(staff.decide(Some(Role::Staff)).is_ok());
        assert!(staff.decide(Some(Role::Admin)).is_ok());
        assert!(matches!(
            RoleGuard::admin().decide(Some(Role::Staff)),
            Err(ApiError::Forbidden)
        ));
        assert!(RoleGuard::signed_in().decide(Some(Role::Customer)).is_ok());
    }
}
