//! Why a review refused a command.

/// A broken review rule. Nothing is recorded for a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Writing a review that is already written (one review per user per product).
    #[error("this user has already reviewed this product")]
    AlreadyWritten,
    /// A command other than `WriteReview` on a review that does not exist.
    #[error("review does not exist")]
    NotWritten,
    /// Editing someone else's review.
    #[error("only the author may edit a review")]
    NotAuthor,
    /// Editing a review that a moderator hid.
    #[error("a hidden review cannot be edited")]
    HiddenReviewLocked,
    /// An edit that changes nothing.
    #[error("review is unchanged")]
    ReviewUnchanged,
    /// The author voting for their own review.
    #[error("an author cannot vote for their own review")]
    AuthorCannotVote,
    /// A second helpful vote by the same user.
    #[error("this user has already voted for this review")]
    AlreadyVoted,
    /// A helpful vote on a review that is not approved (not shown to voters).
    #[error("only an approved review can receive votes")]
    NotApproved,
    /// Approving an approved review.
    #[error("review is already approved")]
    AlreadyApproved,
    /// Rejecting a rejected review.
    #[error("review is already rejected")]
    AlreadyRejected,
    /// Hiding a hidden review.
    #[error("review is already hidden")]
    AlreadyHidden,
}
