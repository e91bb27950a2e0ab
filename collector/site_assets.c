/* site_assets.c: the rating site's stylesheet and its one small script. */
#include "site.h"

/* Phone first: one column, large tap targets, a visible focus ring. The
 * three rating buttons are a grid of three equal columns at every width
 * (from 320 px up): an ordinal scale must not give one answer more room. */
const char site__css[] =
    ":root{color-scheme:light;--fg:#1b1b1b;--muted:#555;--bg:#fff;--line:#d0d0d0;--accent:#0b57d0}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);font:1.05rem/1.5 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif}\n"
    "main{max-width:42rem;margin:0 auto;padding:1rem}\n"
    "h1{font-size:1.4rem;margin:.5rem 0 1rem}\n"
    "dt{font-weight:600;margin-top:.6rem}dd{margin:0 0 .4rem 0}\n"
    ".progress{color:var(--muted);margin:0 0 .25rem}\n"
    "progress{width:100%;height:.6rem;margin-bottom:1rem}\n"
    ".meta{margin:.2rem 0}.label{color:var(--muted);font-size:.9rem;text-transform:uppercase;"
    "letter-spacing:.04em;margin-right:.4rem}\n"
    ".text{white-space:pre-wrap;overflow-wrap:anywhere;margin:.2rem 0 .8rem}\n"
    ".turn{border:1px solid var(--line);border-radius:.6rem;padding:.6rem .8rem;margin:.6rem 0}\n"
    ".turn.response{border-color:var(--accent);border-width:2px}\n"
    ".who{display:block;font-weight:600;font-size:.9rem;color:var(--muted)}\n"
    "fieldset{border:0;padding:0;margin:1rem 0}legend{font-weight:600;margin-bottom:.6rem;padding:0}\n"
    ".choices{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:.5rem}\n"
    "button,.button{flex:1 1 8rem;min-height:3rem;font:inherit;font-weight:600;padding:.6rem 1rem;"
    "border:2px solid var(--accent);border-radius:.6rem;background:#eef3fd;color:var(--fg);"
    "cursor:pointer;text-align:center;text-decoration:none;display:inline-block}\n"
    ".choices button{min-width:0;padding:.6rem .25rem}\n"
    ".choices kbd{display:block;width:max-content;margin:.15rem auto 0}\n"
    ".pair{display:grid;grid-template-columns:1fr;gap:.6rem}\n"
    "@media (min-width:36rem){.pair{grid-template-columns:1fr 1fr}}\n"
    "button.secondary{background:var(--bg)}\n"
    "button:hover,.button:hover{background:#dbe6fb}\n"
    "button:focus-visible,.button:focus-visible,a:focus-visible{outline:3px solid #e37400;"
    "outline-offset:3px}\n"
    "kbd{font:inherit;font-size:.8rem;color:var(--muted);margin-left:.4rem;border:1px solid "
    "var(--line);border-radius:.3rem;padding:0 .3rem}\n"
    ".hint{color:var(--muted);font-size:.9rem}\n"
    ".consent{white-space:pre-line;overflow-wrap:anywhere}\n"
    ".duration{background:#eef3fd;border-radius:.4rem;padding:.5rem .8rem}\n"
    ".question{margin:1.2rem 0}.question legend,.question>label{font-weight:600;display:block;"
    "margin-bottom:.4rem}\n"
    "label.option{display:block;padding:.35rem 0;font-weight:400}\n"
    "input[type=radio]{width:1.2rem;height:1.2rem;margin:0 .5rem 0 0;vertical-align:-.2rem}\n"
    "textarea{width:100%;font:inherit;padding:.5rem;border:1px solid var(--line);"
    "border-radius:.4rem}\n"
    "input:focus-visible,textarea:focus-visible{outline:3px solid #e37400;outline-offset:2px}\n"
    ".req{color:#b3261e}\n"
    ".code{font-size:1.6rem;font-weight:700;letter-spacing:.08em}\n"
    ".error{border-left:4px solid #b3261e;padding-left:.8rem}\n";

/* Keys 1/2/3 press the rating buttons (1 Good, 2 Okay, 3 Bad, in the order
 * shown); a second key press while the form is on its way is ignored. The
 * pages work without it: the buttons are real form buttons. */
const char site__keys_js[] =
    "(function () {\n"
    "  var sent = false;\n"
    "  document.addEventListener('submit', function () { sent = true; });\n"
    "  document.addEventListener('keydown', function (e) {\n"
    "    if (sent || e.altKey || e.ctrlKey || e.metaKey || e.repeat) return;\n"
    "    var b = document.querySelector('button[data-key=\"' + e.key + '\"]');\n"
    "    if (!b) return;\n"
    "    e.preventDefault();\n"
    "    sent = true;\n"
    "    b.focus();\n"
    "    b.click();\n"
    "  });\n"
    "})();\n";
