// Corpus files for the embeddings: a whitespace-tokenised UTF-8 text file, one sentence per
// line, read in blocks and split exactly as nnkern.embeddings._corpus.file_pieces does in
// Python (it stays the reference): block cuts, pieces and tokens are the same, so
// vocabularies and training are identical whichever path reads the file.
//
//   - a block of `block` bytes is appended to the unread rest and cut after its last
//     ' ', '\n', '\t' or '\r' (never inside a token or a UTF-8 sequence); no such byte: read on
//   - each cut chunk must be valid UTF-8 (Python's strict decoder), else Utf8Error
//   - a chunk's lines (split on '\n' only) are pieces that end a sentence; the text after its
//     last '\n', if any, is a piece that ends one only at the end of the file
//   - tokens are split on every character of Python's str.isspace(), as str.split() does
//
// V vocabulary words; ids are the model's int32 indices, -1 for a word it does not know.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/common.hpp"

namespace nnkern {

// Byte strings -> int32 value, open addressing with linear probing; keys are kept in one
// character arena in insertion order (the order Python's Counter keeps for a scan).
class WordTable {
 public:
  // Adds key with value; returns its entry number (0, 1, ...). The key must be new.
  std::int32_t add(std::string_view key, std::int32_t value);
  // The entry number of key, or -1.
  std::int32_t find(std::string_view key) const { return find(key, hash(key)); }
  std::int32_t find(std::string_view key, std::uint64_t h) const;
  std::size_t size() const { return hash_.size(); }
  std::string_view key(std::int32_t e) const {
    return {chars_.data() + off_[e], std::size_t(off_[e + 1] - off_[e])};
  }
  std::int32_t value(std::int32_t e) const { return value_[e]; }
  static std::uint64_t hash(std::string_view key);

 private:
  void place(std::size_t e);
  std::vector<char> chars_;
  std::vector<index_t> off_{0};
  std::vector<std::uint64_t> hash_;
  std::vector<std::int32_t> value_;
  struct Slot {
    std::uint64_t head = 0;    // the key's first 8 bytes, zero-padded
    std::uint32_t meta = 0;    // hash bits and key length
    std::int32_t entry1 = 0;   // entry number + 1, 0 = empty
  };
  std::vector<Slot> slot_;  // size a power of two
};

// Invalid UTF-8 in the chunk starting at file offset `offset` (first bad byte), with up to 8
// bytes from there (what Python's error message shows).
struct Utf8Error {
  index_t offset;
  std::string bytes;
};

// The position of the first byte of the first invalid UTF-8 sequence in [p, p + n) under
// Python's strict decoder (no overlongs, surrogates or code points above U+10FFFF), or -1.
index_t utf8_invalid_at(const char* p, index_t n);

// file_pieces' block cutting. next() hands out the chunks in turn (views valid until the
// next call); memory is the block plus one unfinished token, however long the lines are.
class BlockReader {
 public:
  // Opens path; on failure errno is set and is_open() is false.
  BlockReader(const std::string& path, std::size_t block);
  ~BlockReader();
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;
  bool is_open() const { return f_ != nullptr; }
  // The next chunk and whether it is the file's last; false after the last one. Throws
  // Utf8Error for invalid UTF-8 and std::system_error for a read error.
  bool next(std::string_view& chunk, bool& eof);

 private:
  std::FILE* f_;
  std::size_t block_;
  std::string buf_;
  std::size_t used_ = 0;  // bytes of buf_ handed out by the last next()
  index_t offset_ = 0;    // file offset of buf_[0]
  bool done_ = false;
};

// The pieces of one chunk mapped to ids: piece k holds ids[off[k]:off[k+1]] (in-vocabulary
// tokens only), raw[k] tokens before dropping unknown words, and ends[k] whether it ends a
// sentence (every piece but maybe the last). Appends to the vectors (callers clear them).
struct IdPieces {
  std::vector<std::int32_t> ids;
  std::vector<index_t> off{0};
  std::vector<index_t> raw;
  std::vector<std::uint8_t> ends;
};
void map_chunk(const WordTable& vocab, std::string_view chunk, bool eof, IdPieces& out);

// _corpus.scan() of a file: word counts in first-seen order, with gensim's max_vocab_size
// pruning after each piece (words seen fewer than 1, 2, 3, ... times are dropped each time
// the vocabulary grows past max_vocab_size; < 0 = no limit).
class WordCounter {
 public:
  explicit WordCounter(index_t max_vocab_size) : max_(max_vocab_size) {}
  void add_chunk(std::string_view chunk, bool eof);
  const WordTable& words() const { return table_; }
  const std::vector<index_t>& counts() const { return counts_; }
  index_t sentences() const { return n_sent_; }
  index_t tokens() const { return n_tok_; }

 private:
  void prune();
  WordTable table_;
  std::vector<index_t> counts_;
  index_t max_, min_reduce_ = 1, n_sent_ = 0, n_tok_ = 0;
};

}  // namespace nnkern
