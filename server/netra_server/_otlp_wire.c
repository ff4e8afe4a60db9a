/*
 * netra_server._otlp_wire: an OTLP/protobuf ExportTraceServiceRequest read straight from its bytes into
 * the plain values that netra_server.otlp maps to rows (the optional compiled fast path of ingest).
 *
 * decode(body, max_attribute_bytes) returns the request as the pure-Python reader
 * (netra_server.otlp_read.plain_request) does from the parsed protobuf objects:
 *
 *   [(resource_attributes, checks, [(scope_name, [span, ...]), ...]), ...]
 *   span = (trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, attributes, checks,
 *           events, links, status_code, status_message)
 *   events: None or [(name, time_unix_nano, attributes)]; links: None or [(trace_id, span_id, attributes)]
 *   checks: None or [(key, value)]: the attributes whose size must be measured against the limit (a
 *           superset of those over it; the caller measures them, so the limit is decided in one place).
 *
 * Attribute values are what netra_server.otlp_read._any gives: str, int, float, bool, list, dict, base64
 * text for bytes, None for an unset value (or a string_value_strindex).
 *
 * Anything this reader does not model exactly as the protobuf runtime does raises ValueError, and the
 * caller parses the body with the protobuf runtime instead (which gives the reference result, or the
 * DecodeError of a malformed body): malformed or truncated data, groups, a known field with another
 * wire type, a singular message field sent twice (protobuf merges those), invalid UTF-8 in a string,
 * nesting deeper than MAX_DEPTH. So for any body, the result is the protobuf runtime's; this code only
 * decides how fast it comes. tests/server/test_otlp_wire.py checks that on fuzzed bodies.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 32

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

static PyObject *Unsupported; /* ValueError subclass: the caller falls back to the protobuf runtime */

static int bail(const char *what) {
    PyErr_SetString(Unsupported, what);
    return -1;
}

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) return bail("truncated varint");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1) return bail("varint over 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return bail("varint over 10 bytes");
}

static int read_tag(Reader *r, uint32_t *field, int *wt) {
    uint64_t t;
    if (read_varint(r, &t) < 0) return -1;
    if (t >> 32) return bail("tag over 32 bits");
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*field == 0) return bail("field number 0");
    return 0;
}

/* a length-delimited field's bytes */
static int read_len(Reader *r, Reader *sub) {
    uint64_t n;
    if (read_varint(r, &n) < 0) return -1;
    if (n > (uint64_t)(r->end - r->p)) return bail("length past the end");
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return bail("truncated fixed64");
    uint64_t v;
    memcpy(&v, r->p, 8); /* little-endian hosts only: see the build check in module init */
    r->p += 8;
    *out = v;
    return 0;
}

static int skip_field(Reader *r, int wt) {
    uint64_t v;
    Reader sub;
    switch (wt) {
    case WT_VARINT: return read_varint(r, &v);
    case WT_I64:
        if (r->end - r->p < 8) return bail("truncated fixed64");
        r->p += 8;
        return 0;
    case WT_LEN: return read_len(r, &sub);
    case WT_I32:
        if (r->end - r->p < 4) return bail("truncated fixed32");
        r->p += 4;
        return 0;
    default: return bail("group or invalid wire type");
    }
}

static int expect(int wt, int want) {
    return wt == want ? 0 : bail("a known field with another wire type");
}

/* A known field's value, its wire type checked (another one is left to the protobuf runtime). */
static int field_len(Reader *r, int wt, Reader *out) {
    return expect(wt, WT_LEN) < 0 ? -1 : read_len(r, out);
}

static int field_varint(Reader *r, int wt, uint64_t *out) {
    return expect(wt, WT_VARINT) < 0 ? -1 : read_varint(r, out);
}

static int field_fixed64(Reader *r, int wt, uint64_t *out) {
    return expect(wt, WT_I64) < 0 ? -1 : read_fixed64(r, out);
}

static int field_fixed32(Reader *r, int wt) {
    return expect(wt, WT_I32) < 0 ? -1 : skip_field(r, wt);
}

/* a singular message field: protobuf merges one sent twice, which this reader leaves to it */
static int field_once(Reader *r, int wt, int *seen, const char *what, Reader *out) {
    if (field_len(r, wt, out) < 0) return -1;
    if (*seen) return bail(what);
    *seen = 1;
    return 0;
}

static PyObject *utf8(const Reader *s) {
    PyObject *o = PyUnicode_DecodeUTF8((const char *)s->p, s->end - s->p, "strict");
    if (o == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear(); /* the protobuf runtime decides (it refuses the body) */
        bail("a string that is not UTF-8");
    }
    return o;
}

static int check_utf8(const Reader *s) {
    PyObject *o = utf8(s);
    if (o == NULL) return -1;
    Py_DECREF(o);
    return 0;
}

static PyObject *bytes_of(const Reader *s) {
    return PyBytes_FromStringAndSize((const char *)s->p, s->end - s->p);
}

/* a string field kept in *slot (the last one sent wins, as in protobuf) */
static int field_string(Reader *r, int wt, PyObject **slot) {
    Reader s;
    if (field_len(r, wt, &s) < 0) return -1;
    PyObject *o = utf8(&s);
    if (o == NULL) return -1;
    Py_XSETREF(*slot, o);
    return 0;
}

/* a string field not kept, validated as protobuf validates it */
static int field_unused_string(Reader *r, int wt) {
    Reader s;
    return field_len(r, wt, &s) < 0 ? -1 : check_utf8(&s);
}

/* a message whose known fields are all strings (EntityRef): read only to validate them */
static int validate_strings(Reader r, uint32_t max_field) {
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (read_tag(&r, &f, &wt) < 0) return -1;
        if (f <= max_field) {
            if (field_unused_string(&r, wt) < 0) return -1;
        } else if (skip_field(&r, wt) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *b64(const Reader *s) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Py_ssize_t n = s->end - s->p;
    Py_ssize_t out_n = 4 * ((n + 2) / 3);
    PyObject *out = PyUnicode_New(out_n, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *o = PyUnicode_1BYTE_DATA(out);
    const uint8_t *p = s->p;
    Py_ssize_t i = 0, j = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        o[j++] = tbl[v >> 18];
        o[j++] = tbl[(v >> 12) & 63];
        o[j++] = tbl[(v >> 6) & 63];
        o[j++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        o[j++] = tbl[v >> 18];
        o[j++] = tbl[(v >> 12) & 63];
        o[j++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        o[j++] = '=';
    }
    return out;
}

static PyObject *any_value(Reader r, int depth, int *is_string);
static int key_values(Reader r, PyObject *dict, PyObject **checks, Py_ssize_t limit, int depth);

/* AnyValue -> a Python value (its oneof: the last member sent wins, as in protobuf) */
static PyObject *any_value(Reader r, int depth, int *is_string) {
    if (depth > MAX_DEPTH) {
        bail("nested deeper than the fast reader goes");
        return NULL;
    }
    PyObject *value = Py_NewRef(Py_None);
    uint32_t last_msg = 0; /* the message member last set (5, 6): sent again, protobuf merges them */
    *is_string = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        Reader s;
        PyObject *nv = NULL;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        switch (f) {
        case 1: /* string_value */
            if (field_len(&r, wt, &s) < 0) goto fail;
            nv = utf8(&s);
            break;
        case 2: /* bool_value */
            if (field_varint(&r, wt, &v) < 0) goto fail;
            nv = PyBool_FromLong(v != 0);
            break;
        case 3: /* int_value */
            if (field_varint(&r, wt, &v) < 0) goto fail;
            nv = PyLong_FromLongLong((long long)(int64_t)v);
            break;
        case 4: { /* double_value */
            double d;
            if (field_fixed64(&r, wt, &v) < 0) goto fail;
            memcpy(&d, &v, 8);
            nv = PyFloat_FromDouble(d);
            break;
        }
        case 5: /* array_value */
        case 6: /* kvlist_value */
            if (field_len(&r, wt, &s) < 0) goto fail;
            if (last_msg == f) {
                bail("an AnyValue message member sent twice");
                goto fail;
            }
            if (f == 5) {
                nv = PyList_New(0);
                if (nv == NULL) goto fail;
                while (s.p < s.end) {
                    uint32_t af;
                    int awt;
                    Reader item;
                    if (read_tag(&s, &af, &awt) < 0) goto fail_nv;
                    if (af == 1) {
                        int item_is_string;
                        if (field_len(&s, awt, &item) < 0) goto fail_nv;
                        PyObject *x = any_value(item, depth + 1, &item_is_string);
                        if (x == NULL) goto fail_nv;
                        int rc = PyList_Append(nv, x);
                        Py_DECREF(x);
                        if (rc < 0) goto fail_nv;
                    } else if (skip_field(&s, awt) < 0) {
                        goto fail_nv;
                    }
                }
            } else {
                nv = PyDict_New();
                if (nv == NULL) goto fail;
                if (key_values(s, nv, NULL, 0, depth + 1) < 0) goto fail_nv;
            }
            break;
        case 7: /* bytes_value: as base64 text (the stored attribute maps are JSON) */
            if (field_len(&r, wt, &s) < 0) goto fail;
            nv = b64(&s);
            break;
        case 8: /* string_value_strindex: a profiles dictionary index, not a value */
            if (field_varint(&r, wt, &v) < 0) goto fail;
            nv = Py_NewRef(Py_None);
            break;
        default:
            if (skip_field(&r, wt) < 0) goto fail;
            continue;
        }
        if (nv == NULL) goto fail;
        Py_SETREF(value, nv);
        last_msg = (f == 5 || f == 6) ? f : 0;
        *is_string = f == 1;
        continue;
    fail_nv:
        Py_DECREF(nv);
        goto fail;
    }
    return value;
fail:
    Py_DECREF(value);
    return NULL;
}

/* repeated KeyValue (one element's bytes at a time) into dict; checks: the values whose size must be
 * measured (NULL: no limit applies). */
static int key_value(Reader r, PyObject *dict, PyObject **checks, Py_ssize_t limit, int depth) {
    PyObject *key = NULL, *value = NULL;
    int is_string = 0, have_value = 0;
    Py_ssize_t wire_size = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) {
            if (field_string(&r, wt, &key) < 0) goto fail;
        } else if (f == 2) {
            if (field_once(&r, wt, &have_value, "a KeyValue's value sent twice", &s) < 0) goto fail;
            wire_size = s.end - s.p;
            value = any_value(s, depth, &is_string);
            if (value == NULL) goto fail;
        } else if (f == 3) { /* key_strindex */
            if (field_varint(&r, wt, &v) < 0) goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    if (key == NULL) key = PyUnicode_FromStringAndSize("", 0);
    if (key == NULL) goto fail;
    if (value == NULL) value = Py_NewRef(Py_None);
    if (checks != NULL && value != Py_None) {
        /* a string is over the limit when its UTF-8 bytes are; any other value's JSON is at most six
         * bytes per byte of its encoding (\u001f for a control character) plus brackets */
        int measure = is_string ? wire_size > limit : (!PyLong_Check(value) && !PyFloat_Check(value)
                                                       && 6 * wire_size + 16 > limit);
        if (measure) {
            if (*checks == NULL && (*checks = PyList_New(0)) == NULL) goto fail;
            PyObject *pair = PyTuple_Pack(2, key, value);
            if (pair == NULL) goto fail;
            int rc = PyList_Append(*checks, pair);
            Py_DECREF(pair);
            if (rc < 0) goto fail;
        }
    }
    if (PyDict_SetItem(dict, key, value) < 0) goto fail;
    Py_DECREF(key);
    Py_DECREF(value);
    return 0;
fail:
    Py_XDECREF(key);
    Py_XDECREF(value);
    return -1;
}

/* the elements of a KeyValueList (field 1: KeyValue) */
static int key_values(Reader r, PyObject *dict, PyObject **checks, Py_ssize_t limit, int depth) {
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) return -1;
        if (f == 1) {
            if (field_len(&r, wt, &s) < 0) return -1;
            if (key_value(s, dict, checks, limit, depth) < 0) return -1;
        } else if (skip_field(&r, wt) < 0) {
            return -1;
        }
    }
    return 0;
}

static int append_steal(PyObject *list, PyObject *item) {
    if (item == NULL) return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* Span.Event -> (name, time_unix_nano, attributes) */
static PyObject *event(Reader r) {
    PyObject *name = NULL, *attrs = PyDict_New();
    uint64_t t = 0, v;
    if (attrs == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) {
            if (field_fixed64(&r, wt, &t) < 0) goto fail;
        } else if (f == 2) {
            if (field_string(&r, wt, &name) < 0) goto fail;
        } else if (f == 3) {
            if (field_len(&r, wt, &s) < 0 || key_value(s, attrs, NULL, 0, 1) < 0) goto fail;
        } else if (f == 4) {
            if (field_varint(&r, wt, &v) < 0) goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    if (name == NULL && (name = PyUnicode_FromStringAndSize("", 0)) == NULL) goto fail;
    return Py_BuildValue("(NKN)", name, (unsigned long long)t, attrs);
fail:
    Py_XDECREF(name);
    Py_DECREF(attrs);
    return NULL;
}

/* Span.Link -> (trace_id, span_id, attributes) */
static PyObject *span_link(Reader r) {
    PyObject *tid = NULL, *sid = NULL, *attrs = PyDict_New();
    uint64_t v;
    if (attrs == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        switch (f) {
        case 1:
        case 2: {
            if (field_len(&r, wt, &s) < 0) goto fail;
            PyObject *b = bytes_of(&s);
            if (b == NULL) goto fail;
            if (f == 1)
                Py_XSETREF(tid, b);
            else
                Py_XSETREF(sid, b);
            break;
        }
        case 3:
            if (field_unused_string(&r, wt) < 0) goto fail;
            break;
        case 4:
            if (field_len(&r, wt, &s) < 0 || key_value(s, attrs, NULL, 0, 1) < 0) goto fail;
            break;
        case 5:
            if (field_varint(&r, wt, &v) < 0) goto fail;
            break;
        case 6:
            if (field_fixed32(&r, wt) < 0) goto fail;
            break;
        default:
            if (skip_field(&r, wt) < 0) goto fail;
        }
    }
    if (tid == NULL && (tid = PyBytes_FromStringAndSize("", 0)) == NULL) goto fail;
    if (sid == NULL && (sid = PyBytes_FromStringAndSize("", 0)) == NULL) goto fail;
    return Py_BuildValue("(NNN)", tid, sid, attrs);
fail:
    Py_XDECREF(tid);
    Py_XDECREF(sid);
    Py_DECREF(attrs);
    return NULL;
}

/* Status: its message into *message, its code into *code */
static int status(Reader r, PyObject **message, int32_t *code) {
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        if (read_tag(&r, &f, &wt) < 0) return -1;
        if (f == 2) {
            if (field_string(&r, wt, message) < 0) return -1;
        } else if (f == 3) {
            if (field_varint(&r, wt, &v) < 0) return -1;
            *code = (int32_t)(uint32_t)v;
        } else if (skip_field(&r, wt) < 0) {
            return -1;
        }
    }
    return 0;
}

enum { S_TRACE, S_SPAN, S_PARENT, S_NAME, S_KIND, S_START, S_END, S_ATTRS, S_CHECKS, S_EVENTS, S_LINKS,
       S_CODE, S_MESSAGE, S_FIELDS };

static PyObject *span(Reader r, Py_ssize_t limit) {
    PyObject *o[S_FIELDS] = {NULL};
    PyObject *checks = NULL;
    uint64_t start = 0, end = 0, v;
    int32_t kind = 0, code = 0;
    int have_status = 0;
    o[S_ATTRS] = PyDict_New();
    if (o[S_ATTRS] == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        PyObject *x;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        switch (f) {
        case 1: case 2: case 4: /* trace_id, span_id, parent_span_id */
            if (field_len(&r, wt, &s) < 0 || (x = bytes_of(&s)) == NULL) goto fail;
            Py_XSETREF(o[f == 1 ? S_TRACE : f == 2 ? S_SPAN : S_PARENT], x);
            break;
        case 3: /* trace_state */
            if (field_unused_string(&r, wt) < 0) goto fail;
            break;
        case 5:
            if (field_string(&r, wt, &o[S_NAME]) < 0) goto fail;
            break;
        case 6:
            if (field_varint(&r, wt, &v) < 0) goto fail;
            kind = (int32_t)(uint32_t)v;
            break;
        case 7:
            if (field_fixed64(&r, wt, &start) < 0) goto fail;
            break;
        case 8:
            if (field_fixed64(&r, wt, &end) < 0) goto fail;
            break;
        case 9:
            if (field_len(&r, wt, &s) < 0 || key_value(s, o[S_ATTRS], &checks, limit, 1) < 0)
                goto fail;
            break;
        case 10: case 12: case 14: /* dropped_*_count */
            if (field_varint(&r, wt, &v) < 0) goto fail;
            break;
        case 11: case 13: { /* events, links */
            int i = f == 11 ? S_EVENTS : S_LINKS;
            if (field_len(&r, wt, &s) < 0) goto fail;
            if (o[i] == NULL && (o[i] = PyList_New(0)) == NULL) goto fail;
            if (append_steal(o[i], f == 11 ? event(s) : span_link(s)) < 0) goto fail;
            break;
        }
        case 15: /* status */
            if (field_once(&r, wt, &have_status, "a span's status sent twice", &s) < 0
                || status(s, &o[S_MESSAGE], &code) < 0)
                goto fail;
            break;
        case 16: /* flags */
            if (field_fixed32(&r, wt) < 0) goto fail;
            break;
        default:
            if (skip_field(&r, wt) < 0) goto fail;
        }
    }
    for (int i = S_TRACE; i <= S_PARENT; i++)
        if (o[i] == NULL && (o[i] = PyBytes_FromStringAndSize("", 0)) == NULL) goto fail;
    if (o[S_NAME] == NULL && (o[S_NAME] = PyUnicode_FromStringAndSize("", 0)) == NULL) goto fail;
    if (o[S_MESSAGE] == NULL && (o[S_MESSAGE] = PyUnicode_FromStringAndSize("", 0)) == NULL) goto fail;
    if ((o[S_KIND] = PyLong_FromLong(kind)) == NULL || (o[S_CODE] = PyLong_FromLong(code)) == NULL
        || (o[S_START] = PyLong_FromUnsignedLongLong(start)) == NULL
        || (o[S_END] = PyLong_FromUnsignedLongLong(end)) == NULL)
        goto fail;
    o[S_CHECKS] = checks != NULL ? checks : Py_NewRef(Py_None);
    checks = NULL;
    if (o[S_EVENTS] == NULL) o[S_EVENTS] = Py_NewRef(Py_None);
    if (o[S_LINKS] == NULL) o[S_LINKS] = Py_NewRef(Py_None);
    PyObject *t = PyTuple_New(S_FIELDS);
    if (t == NULL) goto fail;
    for (int i = 0; i < S_FIELDS; i++) PyTuple_SET_ITEM(t, i, o[i]); /* steals */
    return t;
fail:
    for (int i = 0; i < S_FIELDS; i++) Py_XDECREF(o[i]);
    Py_XDECREF(checks);
    return NULL;
}

/* InstrumentationScope: its name into *name; its other fields are read (so they are valid), not kept */
static int scope(Reader r, PyObject **name) {
    PyObject *scratch = PyDict_New(); /* the scope's attributes */
    if (scratch == NULL) return -1;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) {
            if (field_string(&r, wt, name) < 0) goto fail;
        } else if (f == 2) {
            if (field_unused_string(&r, wt) < 0) goto fail;
        } else if (f == 3) {
            if (field_len(&r, wt, &s) < 0 || key_value(s, scratch, NULL, 0, 1) < 0) goto fail;
        } else if (f == 4) {
            if (field_varint(&r, wt, &v) < 0) goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    Py_DECREF(scratch);
    return 0;
fail:
    Py_DECREF(scratch);
    return -1;
}

/* Resource: its attributes into attrs (and *checks, as key_value) */
static int resource(Reader r, PyObject *attrs, PyObject **checks, Py_ssize_t limit) {
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) return -1;
        if (f == 1) {
            if (field_len(&r, wt, &s) < 0 || key_value(s, attrs, checks, limit, 1) < 0) return -1;
        } else if (f == 2) {
            if (field_varint(&r, wt, &v) < 0) return -1;
        } else if (f == 3) { /* entity_refs: strings only */
            if (field_len(&r, wt, &s) < 0 || validate_strings(s, 4) < 0) return -1;
        } else if (skip_field(&r, wt) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ScopeSpans -> (scope_name, [span, ...]) */
static PyObject *scope_spans(Reader r, Py_ssize_t limit) {
    PyObject *name = NULL, *spans = PyList_New(0);
    int have_scope = 0;
    if (spans == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) { /* InstrumentationScope */
            if (field_once(&r, wt, &have_scope, "a scope sent twice", &s) < 0 || scope(s, &name) < 0) goto fail;
        } else if (f == 2) {
            if (field_len(&r, wt, &s) < 0 || append_steal(spans, span(s, limit)) < 0) goto fail;
        } else if (f == 3) {
            if (field_unused_string(&r, wt) < 0) goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    if (name == NULL && (name = PyUnicode_FromStringAndSize("", 0)) == NULL) goto fail;
    return Py_BuildValue("(NN)", name, spans);
fail:
    Py_XDECREF(name);
    Py_DECREF(spans);
    return NULL;
}

/* ResourceSpans -> (resource_attributes, checks, [(scope_name, spans), ...]) */
static PyObject *resource_spans(Reader r, Py_ssize_t limit) {
    PyObject *attrs = PyDict_New(), *scopes = PyList_New(0), *checks = NULL;
    int have_resource = 0;
    if (attrs == NULL || scopes == NULL) goto fail;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) { /* Resource */
            if (field_once(&r, wt, &have_resource, "a resource sent twice", &s) < 0
                || resource(s, attrs, &checks, limit) < 0)
                goto fail;
        } else if (f == 2) {
            if (field_len(&r, wt, &s) < 0 || append_steal(scopes, scope_spans(s, limit)) < 0)
                goto fail;
        } else if (f == 3) {
            if (field_unused_string(&r, wt) < 0) goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    return Py_BuildValue("(NNN)", attrs, checks != NULL ? checks : Py_NewRef(Py_None), scopes);
fail:
    Py_XDECREF(attrs);
    Py_XDECREF(scopes);
    Py_XDECREF(checks);
    return NULL;
}

static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer body;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*n:decode", &body, &limit)) return NULL;
    PyObject *out = PyList_New(0);
    Reader r = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
    if (out == NULL) goto done;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        Reader s;
        if (read_tag(&r, &f, &wt) < 0) goto fail;
        if (f == 1) {
            if (field_len(&r, wt, &s) < 0 || append_steal(out, resource_spans(s, limit)) < 0)
                goto fail;
        } else if (skip_field(&r, wt) < 0) {
            goto fail;
        }
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyBuffer_Release(&body);
    return out;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(body, max_attribute_bytes) -> the request's resources, scopes and spans as plain values; "
     "raises Unsupported (a ValueError) for anything to be left to the protobuf runtime."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlp_wire", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__otlp_wire(void) {
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1) {
        PyErr_SetString(PyExc_ImportError, "netra_server._otlp_wire reads fixed64 fields as little-endian");
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Unsupported = PyErr_NewException("netra_server._otlp_wire.Unsupported", PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
