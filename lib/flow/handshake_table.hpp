#pragma once
// Tracks TCP three-way handshakes by 4-tuple in fixed, preallocated memory.
//
//   SYN            -> entry created in state kSynSeen  (client asked; no answer seen yet)
//   SYN-ACK        -> kSynRecv when ack == SYN.seq + 1 (the server's SYN_RECV, as netstat shows)
//   final ACK      -> completed (entry removed) when ack == SYN-ACK.seq + 1
//   RST (either way), expiry after `pending_timeout`, or eviction when full -> entry removed
//
// A retransmitted SYN (same 4-tuple, same seq) is reported as kSynRetransmit and does not
// create a second entry. Both directions of a connection map to one entry (the key is the
// 4-tuple in canonical order), so one lookup serves any packet.
//
// Memory: exactly `capacity` entries are allocated up front; nothing is allocated per packet.
// When the table is full, a new SYN evicts the oldest pending entry (reported in the update).
// Thread safety: none; one table per capture worker.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/ip_address.hpp"
#include "common/time.hpp"
#include "decode/tcp_segment.hpp"

namespace synwatch {

enum class HandshakeState : std::uint8_t { kSynSeen = 1, kSynRecv = 2 };

enum class FlowEvent : std::uint8_t {
  kNone,              // segment belongs to no tracked handshake and started none
  kSyn,               // new SYN: entry created in kSynSeen
  kSynRetransmit,     // SYN for an existing pending entry
  kSynAck,            // valid SYN-ACK: kSynSeen -> kSynRecv
  kSynAckRetransmit,  // SYN-ACK for an entry already in kSynRecv
  kCompleted,         // valid final ACK: handshake complete, entry removed
  kReset,             // RST for a pending entry, entry removed
  kMismatch,          // SYN-ACK or ACK whose ack number does not match: counted, entry kept
  kUnsolicitedSynAck, // SYN-ACK with no pending SYN (reflection backscatter, or one-way capture)
};

// What one segment did to the table. `server`/`client`/`previous_state` are set for every
// event other than kNone and kUnsolicitedSynAck. If inserting a new SYN evicted an entry,
// `evicted` is true and the evicted_* fields describe it.
struct FlowUpdate {
  FlowEvent event = FlowEvent::kNone;
  HandshakeState previous_state = HandshakeState::kSynSeen;  // state before this segment
  Endpoint server;     // the side that received the SYN (address:port being connected to)
  IpAddress client;    // the side that sent the SYN
  bool evicted = false;
  HandshakeState evicted_state = HandshakeState::kSynSeen;
  Endpoint evicted_server;
  IpAddress evicted_client;
};

struct HandshakeTableCounters {
  std::uint64_t inserted = 0;
  std::uint64_t completed = 0;
  std::uint64_t reset = 0;
  std::uint64_t expired = 0;
  std::uint64_t evicted = 0;
  std::uint64_t syn_retransmits = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t unsolicited_synacks = 0;
};

class HandshakeTable {
 public:
  // capacity: maximum tracked pending handshakes (>= 1, <= 2^28).
  // pending_timeout: a pending entry older than this (from its first SYN) expires.
  HandshakeTable(std::size_t capacity, DurationNs pending_timeout, std::uint64_t hash_seed = 0);
  ~HandshakeTable();
  HandshakeTable(const HandshakeTable&) = delete;
  HandshakeTable& operator=(const HandshakeTable&) = delete;

  // Applies one segment observed at segment.timestamp. `accept_new_syn` is false when the
  // SYN's destination is not one the operator protects: then no entry is created (kNone).
  FlowUpdate process(const TcpSegment& segment, bool accept_new_syn = true) noexcept;

  // Removes every pending entry whose first SYN is older than now - pending_timeout and calls
  // on_expired(server, client, state) for each, oldest first. Cost: O(expired entries).
  template <typename OnExpired>
  void expire(TimestampNs now, OnExpired&& on_expired) noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] DurationNs pending_timeout() const noexcept { return pending_timeout_; }
  void set_pending_timeout(DurationNs timeout) noexcept { pending_timeout_ = timeout; }
  [[nodiscard]] const HandshakeTableCounters& counters() const noexcept { return counters_; }
  // Bytes of preallocated memory (entries plus index), for the memory bound.
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

  // Pending entries by state, maintained incrementally.
  [[nodiscard]] std::size_t count(HandshakeState state) const noexcept {
    return state == HandshakeState::kSynSeen ? syn_seen_ : size_ - syn_seen_;
  }

  struct Entry;  // defined in the .cpp-facing detail header; layout documented there

 private:
  // Pops the oldest entry if it expired by `now`; false when none did.
  bool pop_expired(TimestampNs now, Endpoint& server, IpAddress& client,
                   HandshakeState& state) noexcept;

  std::size_t capacity_;
  DurationNs pending_timeout_;
  std::uint64_t hash_seed_;
  std::size_t size_ = 0;
  std::size_t syn_seen_ = 0;
  HandshakeTableCounters counters_;
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<std::uint32_t[]> index_;  // open addressing: entry number + 1, 0 = empty
  std::size_t index_mask_ = 0;
  std::uint32_t free_head_ = 0;             // free list through Entry::next
  std::uint32_t oldest_ = 0;                // age list (by first SYN), doubly linked
  std::uint32_t newest_ = 0;
  std::int64_t time_base_ = 0;              // entries store time relative to this
};

template <typename OnExpired>
void HandshakeTable::expire(TimestampNs now, OnExpired&& on_expired) noexcept {
  Endpoint server;
  IpAddress client;
  HandshakeState state{};
  while (pop_expired(now, server, client, state)) on_expired(server, client, state);
}

}  // namespace synwatch
