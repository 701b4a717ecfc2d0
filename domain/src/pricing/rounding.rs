//! The one rounding rule of pricing: to the minor unit, half away from zero.

/// `numerator / denominator` rounded half away from zero. `denominator` must be
/// positive (every caller passes a constant or a checked positive sum).
pub(super) fn div_round_half_away(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0, "denominator must be positive");
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    // |remainder| * 2 >= denominator: at or past the half, away from zero.
    if remainder.abs() * 2 >= denominator {
        quotient + numerator.signum()
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_go_away_from_zero() {
        assert_eq!(div_round_half_away(5, 10), 1);
        assert_eq!(div_round_half_away(4, 10), 0);
        assert_eq!(div_round_half_away(-5, 10), -1);
        assert_eq!(div_round_half_away(-4, 10), 0);
        assert_eq!(div_round_half_away(15, 10), 2);
        assert_eq!(div_round_half_away(14, 10), 1);
        assert_eq!(div_round_half_away(0, 7), 0);
        // 1/3 and 2/3.
        assert_eq!(div_round_half_away(1, 3), 0);
        assert_eq!(div_round_half_away(2, 3), 1);
    }
}
