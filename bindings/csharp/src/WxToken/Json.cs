using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace WxToken
{
    // A small strict JSON reader, so the package stays dependency-free on netstandard2.0 (which has no
    // System.Text.Json). Objects become Dictionary<string, object>, arrays List<object>, numbers double (or long when
    // integral), strings string, true/false bool, null null. Used for the engine's stats and options schema and for
    // the top level of WeChat answers; Parse returns false on anything that is not one complete JSON value.
    internal static class Json
    {
        const int MaxDepth = 64;

        internal static bool TryParse(string text, out object value)
        {
            value = null;
            if (text == null) return false;
            int i = 0;
            try
            {
                value = Value(text, ref i, 0);
                Space(text, ref i);
                return i == text.Length;
            }
            catch (FormatException)
            {
                value = null;
                return false;
            }
        }

        static object Value(string s, ref int i, int depth)
        {
            if (depth > MaxDepth) throw new FormatException("too deep");
            Space(s, ref i);
            if (i >= s.Length) throw new FormatException("end of input");
            char c = s[i];
            switch (c)
            {
                case '{': return Object(s, ref i, depth);
                case '[': return Array(s, ref i, depth);
                case '"': return String(s, ref i);
                case 't': Word(s, ref i, "true"); return true;
                case 'f': Word(s, ref i, "false"); return false;
                case 'n': Word(s, ref i, "null"); return null;
                default: return Number(s, ref i);
            }
        }

        static Dictionary<string, object> Object(string s, ref int i, int depth)
        {
            var d = new Dictionary<string, object>(StringComparer.Ordinal);
            i++;
            Space(s, ref i);
            if (i < s.Length && s[i] == '}') { i++; return d; }
            while (true)
            {
                Space(s, ref i);
                if (i >= s.Length || s[i] != '"') throw new FormatException("expected a key");
                string key = String(s, ref i);
                Space(s, ref i);
                Expect(s, ref i, ':');
                d[key] = Value(s, ref i, depth + 1);
                Space(s, ref i);
                if (i < s.Length && s[i] == ',') { i++; continue; }
                Expect(s, ref i, '}');
                return d;
            }
        }

        static List<object> Array(string s, ref int i, int depth)
        {
            var l = new List<object>();
            i++;
            Space(s, ref i);
            if (i < s.Length && s[i] == ']') { i++; return l; }
            while (true)
            {
                l.Add(Value(s, ref i, depth + 1));
                Space(s, ref i);
                if (i < s.Length && s[i] == ',') { i++; continue; }
                Expect(s, ref i, ']');
                return l;
            }
        }

        static string String(string s, ref int i)
        {
            var sb = new StringBuilder();
            i++;
            while (true)
            {
                if (i >= s.Length) throw new FormatException("unterminated string");
                char c = s[i++];
                if (c == '"') return sb.ToString();
                if (c < 0x20) throw new FormatException("control character in a string");
                if (c != '\\') { sb.Append(c); continue; }
                if (i >= s.Length) throw new FormatException("unterminated escape");
                char e = s[i++];
                switch (e)
                {
                    case '"': case '\\': case '/': sb.Append(e); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        int code;
                        if (i + 4 > s.Length || !int.TryParse(s.Substring(i, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                            throw new FormatException("bad \\u escape");
                        sb.Append((char)code);
                        i += 4;
                        break;
                    default: throw new FormatException("bad escape");
                }
            }
        }

        static object Number(string s, ref int i)
        {
            int start = i;
            if (i < s.Length && s[i] == '-') i++;
            int digits = i;
            while (i < s.Length && s[i] >= '0' && s[i] <= '9') i++;
            if (i == digits) throw new FormatException("expected a value");
            bool integral = true;
            if (i < s.Length && s[i] == '.') { integral = false; i++; while (i < s.Length && s[i] >= '0' && s[i] <= '9') i++; }
            if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
            {
                integral = false;
                i++;
                if (i < s.Length && (s[i] == '+' || s[i] == '-')) i++;
                while (i < s.Length && s[i] >= '0' && s[i] <= '9') i++;
            }
            string text = s.Substring(start, i - start);
            long l;
            if (integral && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
            double d;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return d;
            throw new FormatException("bad number");
        }

        static void Word(string s, ref int i, string word)
        {
            if (string.CompareOrdinal(s, i, word, 0, word.Length) != 0) throw new FormatException("expected " + word);
            i += word.Length;
        }

        static void Expect(string s, ref int i, char c)
        {
            if (i >= s.Length || s[i] != c) throw new FormatException("expected " + c);
            i++;
        }

        static void Space(string s, ref int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        }

        // The integer value of `key` in the top-level object of `json`, without building the tree (WeChat answers can be
        // large: a user list): nested objects and arrays are skipped, so an errcode inside them is never taken for the
        // answer's own. Null when `json` is not an object, the key is absent or its value is not an integer.
        internal static long? TopLevelInteger(string json, string key)
        {
            if (json == null) return null;
            int i = 0;
            try
            {
                Space(json, ref i);
                if (i >= json.Length || json[i] != '{') return null;
                i++;
                Space(json, ref i);
                if (i < json.Length && json[i] == '}') return null;
                while (true)
                {
                    Space(json, ref i);
                    if (i >= json.Length || json[i] != '"') return null;
                    string k = String(json, ref i);
                    Space(json, ref i);
                    Expect(json, ref i, ':');
                    Space(json, ref i);
                    if (k == key)
                    {
                        if (i < json.Length && (json[i] == '-' || (json[i] >= '0' && json[i] <= '9')))
                        {
                            object n = Number(json, ref i);
                            return n is long ? (long?)(long)n : null;
                        }
                        return null;
                    }
                    Skip(json, ref i);
                    Space(json, ref i);
                    if (i < json.Length && json[i] == ',') { i++; continue; }
                    return null;
                }
            }
            catch (FormatException)
            {
                return null;
            }
        }

        // Moves past one value: strings honour escapes, objects and arrays are matched by nesting depth.
        static void Skip(string s, ref int i)
        {
            if (i >= s.Length) throw new FormatException("end of input");
            if (s[i] == '"') { String(s, ref i); return; }
            if (s[i] != '{' && s[i] != '[')
            {
                while (i < s.Length && s[i] != ',' && s[i] != '}' && s[i] != ']') i++;
                return;
            }
            int depth = 0;
            while (i < s.Length)
            {
                char c = s[i];
                if (c == '"') { String(s, ref i); continue; }
                i++;
                if (c == '{' || c == '[') depth++;
                else if ((c == '}' || c == ']') && --depth == 0) return;
            }
            throw new FormatException("unterminated value");
        }

        // Readers for parsed objects: a missing key or a value of another type gives the fallback.
        internal static long Long(Dictionary<string, object> o, string key)
        {
            object v;
            if (o == null || !o.TryGetValue(key, out v)) return 0;
            if (v is long) return (long)v;
            if (v is double) return (long)(double)v;
            return 0;
        }

        internal static double? Double(Dictionary<string, object> o, string key)
        {
            object v;
            if (o == null || !o.TryGetValue(key, out v)) return null;
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            return null;
        }

        internal static string Str(Dictionary<string, object> o, string key)
        {
            object v;
            return o != null && o.TryGetValue(key, out v) ? v as string : null;
        }
    }
}
