// Corpus files: block reading, UTF-8 checking, Python's str.split() and the word table.
#include "kernels/corpus.hpp"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace nnkern {

// ---------------------------------------------------------------------------------------
// word table

namespace {

// The n <= 8 bytes at p as the low bytes of a word (zero above), without a memcpy call and
// without reading outside [p, p + n).
inline std::uint64_t load_upto8(const char* p, std::size_t n) {
  std::uint64_t w = 0;
  if (n >= 8) {
    std::memcpy(&w, p, 8);
  } else if (n >= 4) {  // two overlapping 4-byte loads
    std::uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    w = a | (std::uint64_t(b) << (8 * (n - 4)));
  } else if (n > 0) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    w = u[0] | (std::uint64_t(u[n / 2]) << (8 * (n / 2))) | (std::uint64_t(u[n - 1]) << (8 * (n - 1)));
  }
  return w;
}

// A slot's check word: the hash's high bits and the key length (255 = 255 or more).
inline std::uint32_t slot_meta(std::uint64_t h, std::size_t n) {
  return (std::uint32_t(h >> 32) & 0xFFFFFF00u) | std::uint32_t(n < 255 ? n : 255);
}

}  // namespace

std::uint64_t WordTable::hash(std::string_view key) {
  // 8 bytes at a time, multiply-xorshift mixing (words are short: a few rounds)
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  for (; n >= 8; p += 8, n -= 8) {
    h = (h ^ load_upto8(p, 8)) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  if (n) h = (h ^ load_upto8(p, n)) * 0xFF51AFD7ED558CCDull;
  h ^= h >> 29;
  h *= 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 32);
}

// A slot holds a key's first 8 bytes, its length and hash bits: a word of up to 8 bytes (most
// tokens) is found with this one memory access, longer ones compare the rest in the arena.
std::int32_t WordTable::find(std::string_view key, std::uint64_t h) const {
  if (slot_.empty()) return -1;
  const std::size_t mask = slot_.size() - 1;
  const std::uint64_t head = load_upto8(key.data(), key.size() < 8 ? key.size() : 8);
  const std::uint32_t meta = slot_meta(h, key.size());
  for (std::size_t s = h & mask;; s = (s + 1) & mask) {
    const Slot& sl = slot_[s];
    if (!sl.entry1) return -1;
    if (sl.meta == meta && sl.head == head) {
      const std::int32_t e = sl.entry1 - 1;
      if (key.size() <= 8) return e;
      const std::string_view k = this->key(e);
      if (k.size() == key.size() && std::memcmp(k.data() + 8, key.data() + 8, k.size() - 8) == 0)
        return e;
    }
  }
}

void WordTable::place(std::size_t e) {
  const std::size_t mask = slot_.size() - 1;
  const std::string_view k = key(std::int32_t(e));
  std::size_t s = hash_[e] & mask;
  while (slot_[s].entry1) s = (s + 1) & mask;
  slot_[s] = Slot{load_upto8(k.data(), k.size() < 8 ? k.size() : 8), slot_meta(hash_[e], k.size()),
                  std::int32_t(e + 1)};
}

std::int32_t WordTable::add(std::string_view key, std::int32_t value) {
  const std::int32_t e = std::int32_t(hash_.size());
  chars_.insert(chars_.end(), key.begin(), key.end());
  off_.push_back(index_t(chars_.size()));
  hash_.push_back(hash(key));
  value_.push_back(value);
  if (3 * hash_.size() > 2 * slot_.size()) {  // load factor <= 2/3
    slot_.assign(slot_.empty() ? 64 : 2 * slot_.size(), Slot{});
    for (std::size_t k = 0; k < hash_.size(); ++k) place(k);
  } else {
    place(std::size_t(e));
  }
  return e;
}

// ---------------------------------------------------------------------------------------
// UTF-8 and whitespace

index_t utf8_invalid_at(const char* data, index_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  index_t i = 0;
  while (i < n) {
    // ASCII runs 8 bytes at a time
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // RFC 3629 table 3.7: the second byte's range depends on the first
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (int k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return -1;
}

namespace {

// Byte classes for the tokeniser: 0 a token byte, 1 whitespace, 2 '\n', 3 the lead byte of
// a character that may be Unicode whitespace. The whitespace is Python's str.isspace():
// ASCII \t \n \v \f \r, the separators \x1c-\x1f and space; U+0085, U+00A0 (lead 0xC2),
// U+1680 (0xE1), U+2000-U+200A, U+2028, U+2029, U+202F, U+205F (0xE2) and U+3000 (0xE3).
struct ByteClass {
  unsigned char of[256] = {};
  ByteClass() {
    for (int c : {9, 11, 12, 13, 28, 29, 30, 31, 32}) of[c] = 1;
    of['\n'] = 2;
    for (int c : {0xC2, 0xE1, 0xE2, 0xE3}) of[c] = 3;
  }
};
const ByteClass kClass;

// The byte length of the Unicode whitespace character at p (class 3, valid UTF-8: the
// bytes it reads exist), 0 if it is another character.
inline int unicode_space(const unsigned char* p) {
  switch (p[0]) {
    case 0xC2:
      return p[1] == 0x85 || p[1] == 0xA0 ? 2 : 0;
    case 0xE1:
      return p[1] == 0x9A && p[2] == 0x80 ? 3 : 0;
    case 0xE2:
      if (p[1] == 0x80)
        return (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF) ? 3 : 0;
      return p[1] == 0x81 && p[2] == 0x9F ? 3 : 0;
    default:  // 0xE3
      return p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;
  }
}

// file_pieces' pieces of a valid UTF-8 chunk: token(string_view) for each token in turn and
// piece(ends) after each piece's tokens.
template <class Token, class Piece>
void for_each_piece(std::string_view chunk, bool eof, Token&& token, Piece&& piece) {
  const auto* p = reinterpret_cast<const unsigned char*>(chunk.data());
  const std::size_t n = chunk.size();
  std::size_t i = 0, line = 0;
  while (i < n) {
    // a token: bytes up to the next whitespace character (continuation bytes are class 0)
    const std::size_t start = i;
    for (;;) {
      while (i < n && !kClass.of[p[i]]) ++i;
      if (i < n && kClass.of[p[i]] == 3 && !unicode_space(p + i)) {
        ++i;
        continue;
      }
      break;
    }
    if (i > start) token(chunk.substr(start, i - start));
    if (i >= n) break;
    const unsigned k = kClass.of[p[i]];
    if (k == 2) {
      piece(true);
      line = i + 1;
    }
    i += k == 3 ? unicode_space(p + i) : 1;
  }
  if (n > line) piece(eof);  // the text after the last '\n'
}

}  // namespace

// ---------------------------------------------------------------------------------------
// block reader

BlockReader::BlockReader(const std::string& path, std::size_t block)
    : f_(std::fopen(path.c_str(), "rb")), block_(block < 1 ? 1 : block) {}

BlockReader::~BlockReader() {
  if (f_) std::fclose(f_);
}

bool BlockReader::next(std::string_view& chunk, bool& eof) {
  if (done_ || !f_) return false;
  buf_.erase(0, used_);
  offset_ += index_t(used_);
  used_ = 0;
  std::size_t cut = std::string::npos;
  while (cut == std::string::npos) {
    const std::size_t old = buf_.size();
    buf_.resize(old + block_);
    const std::size_t got = std::fread(&buf_[old], 1, block_, f_);
    buf_.resize(old + got);
    if (got == 0) {
      if (std::ferror(f_)) throw std::system_error(errno, std::generic_category(), "read");
      done_ = eof = true;
      used_ = buf_.size();
      break;
    }
    // the unread rest holds none of the cut bytes: search the new block only
    for (std::size_t k = buf_.size(); k-- > old;) {
      const char b = buf_[k];
      if (b == ' ' || b == '\n' || b == '\t' || b == '\r') {
        cut = k;
        break;
      }
    }
    if (cut != std::string::npos) {
      eof = false;
      used_ = cut + 1;
    }
  }
  chunk = std::string_view(buf_.data(), used_);
  const index_t bad = utf8_invalid_at(chunk.data(), index_t(chunk.size()));
  if (bad >= 0) throw Utf8Error{offset_ + bad, std::string(chunk.substr(std::size_t(bad), 8))};
  return true;
}

// ---------------------------------------------------------------------------------------
// ids and counts

void map_chunk(const WordTable& vocab, std::string_view chunk, bool eof, IdPieces& out) {
  out.ids.reserve(out.ids.size() + chunk.size() / 4);  // a token and a space take >= 2 bytes
  index_t raw = 0;
  for_each_piece(
      chunk, eof,
      [&](std::string_view tok) {
        ++raw;
        const std::int32_t e = vocab.find(tok);
        if (e >= 0) out.ids.push_back(vocab.value(e));
      },
      [&](bool ends) {
        out.off.push_back(index_t(out.ids.size()));
        out.raw.push_back(raw);
        out.ends.push_back(ends);
        raw = 0;
      });
}

void WordCounter::add_chunk(std::string_view chunk, bool eof) {
  for_each_piece(
      chunk, eof,
      [&](std::string_view tok) {
        ++n_tok_;
        const std::uint64_t h = WordTable::hash(tok);
        std::int32_t e = table_.find(tok, h);
        if (e < 0) {
          e = table_.add(tok, 0);
          counts_.push_back(0);
        }
        ++counts_[e];
      },
      [&](bool ends) {
        n_sent_ += ends;
        if (max_ >= 0 && index_t(table_.size()) > max_) prune();
      });
}

void WordCounter::prune() {
  // Python deletes the rare words from its Counter: the survivors keep their order
  WordTable kept;
  std::vector<index_t> counts;
  for (std::size_t e = 0; e < table_.size(); ++e)
    if (counts_[e] >= min_reduce_) {
      kept.add(table_.key(std::int32_t(e)), 0);
      counts.push_back(counts_[e]);
    }
  table_ = std::move(kept);
  counts_ = std::move(counts);
  ++min_reduce_;
}

}  // namespace nnkern
