// Corpus file bindings: a vocabulary table built once per training call, a reader that hands
// out one block's pieces as arrays (GIL released while it reads and tokenises), and the
// vocabulary scan of a file.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <system_error>

#include "bindings/util.hpp"
#include "kernels/corpus.hpp"

namespace nnkern::bind {

namespace {

// A word's UTF-8 bytes; a str with lone surrogates (possible in token lists) is encoded with
// surrogatepass, which never matches a token of a valid UTF-8 file.
std::string utf8(const py::handle& s, const char* name) {
  if (!PyUnicode_Check(s.ptr())) throw py::type_error(std::string(name) + ": expected str keys");
  Py_ssize_t n;
  if (const char* p = PyUnicode_AsUTF8AndSize(s.ptr(), &n)) return std::string(p, std::size_t(n));
  PyErr_Clear();
  py::bytes b = py::reinterpret_steal<py::bytes>(
      PyUnicode_AsEncodedString(s.ptr(), "utf-8", "surrogatepass"));
  if (!b) throw py::error_already_set();
  return std::string(b);
}

class CorpusVocab {
 public:
  // keys[i] has model index ids[i]
  CorpusVocab(const py::list& keys, const py::array& ids) {
    const index_t n = index_t(keys.size());
    const std::int32_t* pi = indices<std::int32_t>(ids, "ids", n, -1);
    for (index_t i = 0; i < n; ++i) {
      const std::string k = utf8(py::object(keys[i]), "keys");
      if (table_.find(k) >= 0) throw py::value_error("keys: " + k + " appears twice");
      table_.add(k, pi[i]);
    }
  }
  const WordTable& table() const { return table_; }

 private:
  WordTable table_;
};

// OSError (FileNotFoundError, ...) for errno and the file, as open() and read() raise it.
[[noreturn]] void raise_os_error(int err, const py::bytes& path) {
  errno = err;
  PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path.ptr());
  throw py::error_already_set();
}

std::unique_ptr<BlockReader> open_file(const py::bytes& path, std::size_t block) {
  auto r = std::make_unique<BlockReader>(std::string(path), block);
  if (!r->is_open()) raise_os_error(errno, path);
  return r;
}

// Utf8Error as file_pieces raises it: ValueError naming the file and the byte offset.
[[noreturn]] void raise_utf8(const Utf8Error& e, const std::string& name) {
  throw py::value_error("corpus_file: " + name + " is not valid UTF-8 (byte offset " +
                        std::to_string(e.offset) + ": " +
                        std::string(py::repr(py::bytes(e.bytes))) + ")");
}

template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(py::ssize_t(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

class CorpusReader {
 public:
  CorpusReader(const py::bytes& path, std::size_t block, std::shared_ptr<CorpusVocab> vocab,
               std::string name)
      : path_(path), vocab_(std::move(vocab)), name_(std::move(name)),
        reader_(open_file(path, block)) {
    if (!vocab_) throw py::type_error("vocab: expected a CorpusVocab");
  }

  // The next chunk's pieces (ids int32, off int64 (P+1), raw int64 (P), ends bool (P)), or
  // None after the last.
  py::object read() {
    if (busy_.exchange(true)) throw py::value_error("CorpusReader: read() from two threads");
    struct Done {
      std::atomic<bool>& b;
      ~Done() { b = false; }
    } done{busy_};
    IdPieces out;
    bool more = false;
    try {
      py::gil_scoped_release nogil;
      std::string_view chunk;
      bool eof = false;
      more = reader_->next(chunk, eof);
      if (more) map_chunk(vocab_->table(), chunk, eof, out);
    } catch (const Utf8Error& e) {
      raise_utf8(e, name_);
    } catch (const std::system_error& e) {
      raise_os_error(e.code().value(), path_);
    }
    if (!more) return py::none();
    py::array_t<bool> ends(py::ssize_t(out.ends.size()));
    std::copy(out.ends.begin(), out.ends.end(), ends.mutable_data());
    return py::make_tuple(to_numpy(out.ids), to_numpy(out.off), to_numpy(out.raw), ends);
  }

 private:
  py::bytes path_;
  std::shared_ptr<CorpusVocab> vocab_;
  std::string name_;
  std::unique_ptr<BlockReader> reader_;
  std::atomic<bool> busy_{false};
};

// _corpus.scan() of a file -> (words in first-seen order, their counts, sentences, tokens)
py::tuple count_corpus_file(const py::bytes& path, std::size_t block, index_t max_vocab_size,
                            const std::string& name) {
  auto reader = open_file(path, block);
  WordCounter counter(max_vocab_size);
  try {
    py::gil_scoped_release nogil;
    std::string_view chunk;
    bool eof = false;
    while (reader->next(chunk, eof)) counter.add_chunk(chunk, eof);
  } catch (const Utf8Error& e) {
    raise_utf8(e, name);
  } catch (const std::system_error& e) {
    raise_os_error(e.code().value(), path);
  }
  const WordTable& words = counter.words();
  py::list keys(words.size());
  for (std::size_t e = 0; e < words.size(); ++e) {
    const std::string_view k = words.key(std::int32_t(e));
    keys[e] = py::str(k.data(), k.size());
  }
  return py::make_tuple(keys, to_numpy(counter.counts()), counter.sentences(), counter.tokens());
}

}  // namespace

void bind_corpus(py::module_& m) {
  py::class_<CorpusVocab, std::shared_ptr<CorpusVocab>>(m, "CorpusVocab")
      .def(py::init<const py::list&, const py::array&>(), py::arg("keys"), py::arg("ids"))
      .def("__len__", [](const CorpusVocab& v) { return v.table().size(); });

  py::class_<CorpusReader>(m, "CorpusReader")
      .def(py::init<const py::bytes&, std::size_t, std::shared_ptr<CorpusVocab>, std::string>(),
           py::arg("path"), py::arg("block"), py::arg("vocab"), py::arg("name"))
      .def("read", &CorpusReader::read);

  m.def("count_corpus_file", &count_corpus_file, py::arg("path"), py::arg("block"),
        py::arg("max_vocab_size"), py::arg("name"));
}

}  // namespace nnkern::bind
