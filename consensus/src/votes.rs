//! The vote keeper of one height: the verified votes of every validator, per round and kind,
//! with tallies per value. Invariants: a validator counts at most once per value and at most once
//! in the "any value" total of a (round, kind); it may count for two different values only if it
//! equivocated, which is reported (once) as evidence, and at most [`crate::limits::VOTES_PER_SLOT_MAX`] votes
//! per (validator, round, kind) are stored. Counting an equivocator for both of its values is
//! safe: two quorums of more than 2n/3 distinct validators each still share a correct validator,
//! and a correct validator never votes for two values. It is needed for liveness: a correct node
//! that first saw a twin's vote for A must still recognise the quorum for B it belongs to.
//! Rounds beyond the window set by the caller are never stored.

use std::collections::BTreeMap;

use crate::limits::VOTES_PER_SLOT_MAX;
use crate::types::{BlockHash, Round, SignedVote, ValidatorIndex, VoteKind};

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddVote {
    /// The vote is new and counted.
    Added,
    /// The same vote was already counted, or the slot is full.
    Duplicate,
    /// The validator already has a different vote in this slot: (its first vote, this
    /// conflicting vote, which counts for its own value), for evidence. Reported once per slot;
    /// later conflicting votes are dropped and return `Duplicate`.
    Equivocation(Box<(SignedVote, SignedVote)>),
}

#[derive(Debug, Clone)]
struct KindVotes {
    /// Per validator, the first vote and at most one conflicting vote
    /// ([`crate::limits::VOTES_PER_SLOT_MAX`]); further conflicting votes are dropped.
    slots: Vec<Vec<SignedVote>>,
    /// (value, distinct validators that voted for it): at most `2n` entries, first-seen order.
    tally: Vec<(Option<BlockHash>, usize)>,
    /// Distinct validators with any vote.
    total: usize,
}

impl KindVotes {
    fn new(n: usize) -> Self {
        KindVotes {
            slots: vec![Vec::new(); n],
            tally: Vec::new(),
            total: 0,
        }
    }

    fn count(&self, value: Option<BlockHash>) -> usize {
        self.tally
            .iter()
            .find(|(v, _)| *v == value)
            .map_or(0, |(_, c)| *c)
    }
}

#[derive(Debug, Clone)]
struct RoundVotes {
    prevotes: KindVotes,
    precommits: KindVotes,
    /// Validators from which any message of this round was seen (L55).
    seen: Vec<bool>,
    seen_count: usize,
}

impl RoundVotes {
    fn new(n: usize) -> Self {
        RoundVotes {
            prevotes: KindVotes::new(n),
            precommits: KindVotes::new(n),
            seen: vec![false; n],
            seen_count: 0,
        }
    }

    fn kind(&self, kind: VoteKind) -> &KindVotes {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    fn kind_mut(&mut self, kind: VoteKind) -> &mut KindVotes {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// Votes of one height for a validator set of `n` validators.
#[derive(Debug, Clone)]
pub struct VoteKeeper {
    n: usize,
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    /// An empty keeper for `n` validators.
    #[must_use]
    pub fn new(n: usize) -> Self {
        VoteKeeper {
            n,
            rounds: BTreeMap::new(),
        }
    }

    /// Records that `validator` sent some message in `round` (for the f+1 rule, L55).
    /// Indices out of range are ignored (callers verify them first).
    pub fn note_message(&mut self, round: Round, validator: ValidatorIndex) {
        let index = usize::from(validator);
        if index >= self.n {
            return;
        }
        let n = self.n;
        let votes = self
            .rounds
            .entry(round)
            .or_insert_with(|| RoundVotes::new(n));
        if !votes.seen[index] {
            votes.seen[index] = true;
            votes.seen_count += 1;
        }
    }

    /// Adds a vote whose signature the caller has verified and whose validator index is in range.
    pub fn add(&mut self, vote: SignedVote) -> AddVote {
        let index = usize::from(vote.vote.validator);
        if index >= self.n {
            return AddVote::Duplicate;
        }
        self.note_message(vote.vote.round, vote.vote.validator);
        let n = self.n;
        let round = self
            .rounds
            .entry(vote.vote.round)
            .or_insert_with(|| RoundVotes::new(n));
        let votes = round.kind_mut(vote.vote.kind);
        let slot = &mut votes.slots[index];
        if slot.iter().any(|v| v.vote == vote.vote) || slot.len() >= VOTES_PER_SLOT_MAX {
            return AddVote::Duplicate;
        }
        let first = slot.first().copied();
        slot.push(vote);
        if first.is_none() {
            votes.total += 1;
        }
        let value = vote.vote.block_hash;
        match votes.tally.iter_mut().find(|(v, _)| *v == value) {
            Some((_, count)) => *count += 1,
            None => votes.tally.push((value, 1)),
        }
        match first {
            None => AddVote::Added,
            Some(first) => AddVote::Equivocation(Box::new((first, vote))),
        }
    }

    /// Votes of `kind` in `round` for `value` (`None` counts nil votes).
    #[must_use]
    pub fn count(&self, round: Round, kind: VoteKind, value: Option<BlockHash>) -> usize {
        self.rounds
            .get(&round)
            .map_or(0, |r| r.kind(kind).count(value))
    }

    /// Votes of `kind` in `round`, for any value.
    #[must_use]
    pub fn total(&self, round: Round, kind: VoteKind) -> usize {
        self.rounds.get(&round).map_or(0, |r| r.kind(kind).total)
    }

    /// Every (round, block) with at least `quorum` precommits, lowest round first.
    #[must_use]
    pub fn precommit_quorums(&self, quorum: usize) -> Vec<(Round, BlockHash)> {
        let mut found = Vec::new();
        for (round, votes) in &self.rounds {
            for (value, count) in &votes.precommits.tally {
                if let (Some(hash), true) = (value, *count >= quorum) {
                    found.push((*round, *hash));
                }
            }
        }
        found
    }

    /// The highest round above `current` in which at least `threshold` distinct validators sent
    /// a message (L55).
    #[must_use]
    pub fn skip_round(&self, current: Round, threshold: usize) -> Option<Round> {
        self.rounds
            .range(current.next()..)
            .rev()
            .find(|(_, votes)| votes.seen_count >= threshold)
            .map(|(round, _)| *round)
            .filter(|round| *round > current)
    }

    /// The signed votes of `kind` for `block_hash` in `round`, by ascending validator index.
    #[must_use]
    pub fn votes_for(
        &self,
        round: Round,
        kind: VoteKind,
        block_hash: BlockHash,
    ) -> Vec<SignedVote> {
        self.rounds.get(&round).map_or_else(Vec::new, |r| {
            r.kind(kind)
                .slots
                .iter()
                .filter_map(|slot| {
                    slot.iter()
                        .find(|v| v.vote.block_hash == Some(block_hash))
                        .copied()
                })
                .collect()
        })
    }

    /// Every vote stored for `validator` (its first vote per slot), by round then kind.
    #[must_use]
    pub fn votes_of(&self, validator: ValidatorIndex) -> Vec<SignedVote> {
        let index = usize::from(validator);
        let mut found = Vec::new();
        for votes in self.rounds.values() {
            for kind in [&votes.prevotes, &votes.precommits] {
                if let Some(first) = kind.slots.get(index).and_then(|slot| slot.first()) {
                    found.push(*first);
                }
            }
        }
        found
    }

    /// Votes stored in total (for tests of the memory bounds).
    #[must_use]
    pub fn stored_votes(&self) -> usize {
        self.rounds
            .values()
            .map(|r| {
                r.prevotes.slots.iter().map(Vec::len).sum::<usize>()
                    + r.precommits.slots.iter().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    /// Rounds with any stored message.
    #[must_use]
    pub fn stored_rounds(&self) -> usize {
        self.rounds.len()
    }
}
