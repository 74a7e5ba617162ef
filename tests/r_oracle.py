"""Run R's metafor on batches of inputs and return its results as Python data (the test oracle).

One ``Rscript`` process per batch: ``run_jobs({"id": {"kind": ..., **inputs}, ...})`` writes the
jobs as JSON, runs the R program below, and returns ``{"id": {...results...}}``. Missing R,
metafor or jsonlite raise :class:`RAbsent` (tests turn it into ``pytest.skip``). NA/NaN come
back as ``float("nan")``. A job that errors in R comes back as ``{"error": message}``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any


class RAbsent(RuntimeError):
    """Rscript, metafor or jsonlite is not available."""


R_PROGRAM = r"""
args <- commandArgs(trailingOnly = TRUE)
for (p in c("metafor", "jsonlite")) if (!requireNamespace(p, quietly = TRUE)) {
  cat("missing R package:", p, "\n", file = stderr()); quit(status = 3)
}
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
jobs <- fromJSON(args[1], simplifyVector = TRUE)
num <- function(x) as.numeric(x)
tight <- list(threshold = 1e-12, maxiter = 10000)
pooled <- function(r) list(
  estimate = num(r$b[1]), se = num(r$se[1]), ci_lower = num(r$ci.lb[1]), ci_upper = num(r$ci.ub[1]),
  z = num(r$zval[1]), p = num(r$pval[1]), q = num(r$QE), q_p = num(r$QEp), tau2 = num(r$tau2),
  i2 = num(r$I2), k = r$k, weights = num(weights(r)))
run <- function(j) {
  k <- j$kind
  if (k == "dl") return(pooled(rma(j$yi, j$vi, method = "DL")))
  if (k == "ee") return(pooled(rma(j$yi, j$vi, method = "EE")))
  if (k == "data") return(as.list(get(j$name)))   # a data set of metafor/metadat, by name
  if (k == "escalc") {   # any measure, escalc's defaults (add=1/2, to="only0", drop00=FALSE)
    e <- do.call(escalc, c(list(measure = j$measure), j$args))
    return(list(yi = num(e$yi), vi = num(e$vi)))
  }
  if (k == "rma") {   # method EE/DL/REML/PM, test z/knha; tight convergence for REML and PM
    r <- suppressWarnings(rma(j$yi, j$vi, method = j$method, test = j$test,
                              control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)))
    out <- pooled(r)
    out$h2 <- num(r$H2); out$df <- num(r$dfs); out$test <- r$test
    return(out)
  }
  if (k == "md") {
    e <- escalc("MD", m1i = j$m1, sd1i = j$sd1, n1i = j$n1, m2i = j$m2, sd2i = j$sd2, n2i = j$n2)
    return(list(yi = num(e$yi), vi = num(e$vi)))
  }
  if (k == "rr") {
    e <- escalc("RR", ai = j$a, n1i = j$n1, ci = j$c, n2i = j$n2, add = 1/2, to = "only0", drop00 = TRUE)
    return(list(yi = num(e$yi), vi = num(e$vi)))
  }
  if (k == "rr_mh") {   # metan's rr random: DL tau2 from the Q around the M-H estimate
    e <- escalc("RR", ai = j$a, n1i = j$n1, ci = j$c, n2i = j$n2, add = 1/2, to = "only0", drop00 = TRUE)
    e <- e[!is.na(e$yi), ]
    m <- rma.mh(ai = j$a, n1i = j$n1, ci = j$c, n2i = j$n2, measure = "RR",
                add = c(1/2, 1/2), to = c("only0", "only0"), drop00 = c(TRUE, TRUE))
    w <- 1 / e$vi; kk <- nrow(e)
    tau2 <- max(0, (m$QE - (kk - 1)) / (sum(w) - sum(w^2) / sum(w)))
    r <- pooled(rma(e$yi, e$vi, tau2 = tau2))
    r$q <- num(m$QE); r$q_p <- num(m$QEp); r$mh <- num(m$beta[1])
    r$i2 <- if (m$QE > 0) max(0, (m$QE - (kk - 1)) / m$QE) * 100 else 0
    return(r)
  }
  if (k == "metareg") {
    r <- rma(j$yi, j$vi, mods = ~ j$x, method = "REML", test = "adhoc", control = tight)
    return(list(coef = num(r$b), se = num(r$se), t = num(r$zval), p = num(r$pval),
                ci_lower = num(r$ci.lb), ci_upper = num(r$ci.ub), tau2 = num(r$tau2),
                q_res = num(r$QE), q_res_p = num(r$QEp), df = r$k - r$p))
  }
  if (k == "pft") {
    e <- escalc("PFT", xi = j$x, ni = j$n)
    r <- rma(e$yi, e$vi, method = j$method)
    pr <- predict(r, transf = transf.ipft.hm, targs = list(ni = j$n))
    out <- pooled(r)
    out$yi <- num(e$yi); out$vi <- num(e$vi)
    out$proportion <- num(pr$pred); out$prop_lower <- num(pr$ci.lb); out$prop_upper <- num(pr$ci.ub)
    return(out)
  }
  if (k == "ranktest") {   # optional exact = TRUE/FALSE (metafor's default: exact P at any k)
    r <- if (is.null(j$exact)) suppressWarnings(ranktest(j$yi, j$vi))
         else suppressWarnings(ranktest(j$yi, j$vi, exact = j$exact))
    return(list(tau = num(r$tau), p = num(r$pval)))
  }
  if (k == "regtest") {   # Egger's test (model "lm"), or regtest's other variants when given
    a <- list(model = if (is.null(j$model)) "lm" else j$model)
    for (o in c("method", "test", "predictor")) if (!is.null(j[[o]])) a[[o]] <- j[[o]]
    r <- do.call(regtest, c(list(j$yi, j$vi), a))
    return(list(t = num(r$zval), p = num(r$pval), df = num(r$dfs), slope = num(r$est)))
  }
  if (k == "leave1out") {   # optional method (default "DL"; "EE" for the fixed-effect rows)
    l <- leave1out(rma(j$yi, j$vi, method = if (is.null(j$method)) "DL" else j$method))
    return(list(estimate = num(l$estimate), se = num(l$se), z = num(l$zval), p = num(l$pval),
                ci_lower = num(l$ci.lb), ci_upper = num(l$ci.ub), q = num(l$Q), q_p = num(l$Qp),
                tau2 = num(l$tau2), i2 = num(l$I2)))
  }
  stop(paste("unknown kind", k))
}
out <- lapply(jobs, function(j) tryCatch(run(j), error = function(e) list(error = conditionMessage(e))))
writeLines(toJSON(out, digits = NA, auto_unbox = FALSE, na = "string", null = "null"), args[2])
"""


def r_status() -> tuple[bool, str]:
    """(available, reason) for Rscript on PATH (packages are checked when a batch runs)."""
    if shutil.which("Rscript") is None:
        return False, "Rscript not on PATH"
    return True, ""


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        vals = [_clean(v) for v in x]
        return vals
    if x is None or x in ("NA", "NaN"):
        return math.nan
    if x == "Inf":
        return math.inf
    if x == "-Inf":
        return -math.inf
    return x


def run_jobs(jobs: dict[str, dict[str, Any]], timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Run all ``jobs`` in one R process; see module docstring."""
    ok, why = r_status()
    if not ok:
        raise RAbsent(why)
    with tempfile.TemporaryDirectory() as d:
        src, inp, outp = Path(d, "oracle.R"), Path(d, "in.json"), Path(d, "out.json")
        src.write_text(R_PROGRAM)
        inp.write_text(json.dumps(jobs))
        proc = subprocess.run(
            ["Rscript", "--vanilla", str(src), str(inp), str(outp)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode == 3:
            raise RAbsent(proc.stderr.strip())
        if proc.returncode != 0:
            raise RuntimeError(f"Rscript failed ({proc.returncode}):\n{proc.stderr}")
        raw = json.loads(outp.read_text())
    out: dict[str, dict[str, Any]] = {}
    for name, res in raw.items():
        res = _clean(res)
        # auto_unbox is off (so length-1 vectors stay vectors); unbox length-1 lists here
        out[name] = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in res.items()}
    return out
