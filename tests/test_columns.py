"""Tables as they come: text categories, yes/no columns, integer codes and empty cells, read by
one schema (vaekit.data.schema), modelled with a likelihood per column kind, through the
Python API and the command line."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import vaekit
from vaekit.cli import main
from vaekit.data import as_dataset, load_dataset
from vaekit.data.schema import Schema, parse_column_types
from vaekit.errors import VaekitError
from vaekit.likelihoods import MixedLikelihood

CENTRES = {"red": 0.0, "green": 4.0, "blue": -4.0}


def shop(n: int, seed: int, anomalies: int = 0, missing: float = 0.0):
    """A mixed table: a colour (text) that sets a size (number), a yes/no flag, an integer store
    code, noise; anomalies break the colour-size relation (a size of another colour)."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(list(CENTRES), n)
    size = np.array([CENTRES[c] for c in colour]) + rng.normal(scale=0.5, size=n)
    marks = np.zeros(n, int)
    for i in rng.choice(n, anomalies, replace=False):
        size[i] = CENTRES[rng.choice([c for c in CENTRES if c != colour[i]])] + rng.normal(scale=0.5)
        marks[i] = 1
    frame = pd.DataFrame({"colour": colour, "size": size, "member": rng.random(n) < 0.4,
                          "store": rng.choice([101, 205, 310], n), "noise": rng.normal(size=n)})
    frame["colour"] = frame["colour"].astype(object)
    frame["size"] = frame["size"].astype(float)
    for column in ("colour", "size", "noise"):
        gaps = rng.random(n) < missing
        frame.loc[gaps, column] = None if column == "colour" else np.nan
    return frame, marks


def one_hot_mean_filled(train: pd.DataFrame, test: pd.DataFrame):
    """What a user does by hand for IsolationForest: one-hot the text, fill gaps with the mean."""
    both = pd.get_dummies(pd.concat([train, test]), columns=["colour"], dtype=float).astype(float)
    both = both.fillna(both.iloc[:len(train)].mean())
    return both.iloc[:len(train)].to_numpy(), both.iloc[len(train):].to_numpy()


# -- the schema ------------------------------------------------------------------------------------
def test_columns_are_read_by_kind_and_missing_cells_are_nan():
    frame = pd.DataFrame({"n": [1.5, None, 3.0], "t": ["a", "b", None], "b": [True, False, True],
                          "c": pd.Categorical(["u", "v", "u"], categories=["u", "v", "w"]), "code": [7, 9, 7]})
    ds = as_dataset(frame, column_types={"code": "categorical"})
    kinds = {c.name: (c.kind, c.levels) for c in ds.schema.columns}
    assert kinds == {"n": ("continuous", ()), "t": ("categorical", ("a", "b")), "b": ("binary", ("False", "True")),
                     "c": ("categorical", ("u", "v", "w")), "code": ("categorical", ("7", "9"))}
    x = ds.x.numpy()
    assert x.shape == (3, 1 + 3 + 1 + 4 + 3) and list(ds.columns[1:4]) == ["t=a", "t=b", "t=(unseen)"]
    np.testing.assert_array_equal(x[1], [np.nan, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0])
    assert np.isnan(x[2, 1:4]).all() and not np.isnan(x[2, 4:]).any()  # a missing category: its whole group
    back = ds.schema.decode(x)
    assert list(back["t"]) == ["a", "b", None] and list(back["b"]) == [True, False, True]
    assert back["code"].tolist() == [7.0, 9.0, 7.0] and list(back["c"]) == ["u", "v", "u"]
    assert Schema.from_json(json.loads(json.dumps(ds.schema.to_json()))) == ds.schema


def test_a_new_category_is_unseen_never_an_error_and_numbers_alone_keep_no_schema():
    schema = as_dataset(pd.DataFrame({"t": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})).schema
    later = as_dataset(pd.DataFrame({"t": ["z", "a"], "v": [1.0, 2.0]}), schema=schema)
    np.testing.assert_array_equal(later.x.numpy()[:, :3], [[0, 0, 1], [1, 0, 0]])
    assert list(schema.decode(later.x.numpy())["t"]) == ["(unseen)", "a"]
    with pytest.raises(VaekitError, match="an array has no column names: pass a DataFrame"):
        as_dataset(np.array([["a", 1.0]], dtype=object), schema=schema)
    assert as_dataset(pd.DataFrame({"v": [1.0, 2.0], "w": [3, 4]})).schema is None


@pytest.mark.parametrize("frame, types, message", [
    (pd.DataFrame({"id": [f"user{i}" for i in range(80)]}), None, "80 different texts in 80 rows, too many to be "
                                                                    "categories .*column_types='id=categorical'"),
    (pd.DataFrame({"v": [1.0, 2.0, "oops", 4.0]}), None, "column 'v' holds numbers but also 'oops' .row 2."),
    (pd.DataFrame({"v": ["a", "b"]}), {"v": "continuous"}, "column 'v' is declared continuous but holds 'a'"),
    (pd.DataFrame({"v": [1, 2, 3]}), {"v": "binary"}, "column 'v' is declared binary but holds 3 values"),
    (pd.DataFrame({"v": [1, 2, 3]}), {"w": "categorical"}, "names 'w', which .* does not have"),
    (pd.DataFrame({"v": [1.0, np.inf]}), None, "column 'v' holds infinite values"),
])
def test_columns_that_cannot_be_read_are_one_line(frame, types, message):
    with pytest.raises(VaekitError, match=message):
        as_dataset(frame, column_types=types)


def test_column_types_on_the_command_line():
    assert parse_column_types("zip=categorical, smoker=binary") == {"zip": "categorical", "smoker": "binary"}
    with pytest.raises(VaekitError, match="must look like zip=categorical"):
        parse_column_types("zip:categorical")


# -- the likelihood --------------------------------------------------------------------------------
def test_each_column_kind_has_its_own_term_and_gaps_scale_by_columns():
    torch.manual_seed(0)
    lik = MixedLikelihood((("continuous", 2), ("binary", 1), ("categorical", 3)), "gaussian-learned")
    params = torch.randn(4, 6)
    x = torch.tensor([[0.3, -1.0, 1.0, 0.0, 1.0, 0.0]] * 4)
    gauss = torch.distributions.Normal(params[:, :2], 1.0).log_prob(x[:, :2]).sum(1)
    bern = torch.distributions.Bernoulli(logits=params[:, 2]).log_prob(x[:, 2])
    cat = torch.log_softmax(params[:, 3:], 1)[:, 1]
    torch.testing.assert_close(lik.log_prob(params, x), gauss + bern + cat)
    terms, _ = lik.column_terms(params, x)
    assert terms.shape == (4, 4)  # a categorical column is one column, however many levels
    gappy = x.clone()
    gappy[0, 0] = np.nan            # one number missing
    gappy[1, 3:] = np.nan           # the category missing (its three model columns)
    got = lik.log_prob(params, gappy)
    torch.testing.assert_close(got[0], terms[0, 1:].mean() * 4)
    torch.testing.assert_close(got[1], terms[1, :3].mean() * 4)
    mean = lik.mean(params)
    torch.testing.assert_close(mean[:, 3:].sum(1), torch.ones(4))
    assert ((mean[:, 2] > 0) & (mean[:, 2] < 1)).all()


# -- every table of the suite, with defaults --------------------------------------------------------
TABLES = {
    "text": lambda f: f[["colour", "size"]],
    "booleans": lambda f: f[["member", "size"]],
    "one-hot": lambda f: pd.concat([pd.get_dummies(f["colour"], dtype=float).reindex(columns=list(CENTRES),
                                                                                   fill_value=0.0), f[["size"]]],
                                   axis=1),
    "integer codes": lambda f: f[["store", "size"]],
    "everything": lambda f: f,
}


@pytest.mark.parametrize("missing", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("kind", list(TABLES))
def test_every_mixed_table_fits_and_scores_finite_with_defaults(kind, missing):
    frame, _ = shop(150, seed=1, missing=missing)
    later, _ = shop(40, seed=2, missing=missing)
    later.loc[0, "colour"] = "purple"  # a category never seen in fitting
    types = {"store": "categorical"} if kind in ("integer codes", "everything") else None
    train, test = TABLES[kind](frame), TABLES[kind](later)
    det = vaekit.AnomalyDetector(random_state=0, column_types=types).fit(train)
    scores = det.decision_function(test)
    assert scores.shape == (40,) and np.isfinite(scores).all()
    if "colour" in test and not pd.isna(later.loc[0, "colour"]):
        assert scores[0] > np.median(scores)  # the new category is unlikely


@pytest.mark.slow
def test_planted_anomalies_in_text_with_gaps_are_found_better_than_by_an_isolation_forest():
    train, _ = shop(1000, seed=3, missing=0.2)
    test, marks = shop(400, seed=4, anomalies=40, missing=0.2)
    auroc = {}
    for model in ("vae", "ae"):
        det = vaekit.AnomalyDetector(model=model, random_state=0, column_types={"store": "categorical"}).fit(train)
        auroc[model] = roc_auc_score(marks, det.decision_function(test))
    a, b = one_hot_mean_filled(train, test)
    auroc["iforest"] = roc_auc_score(marks, -IsolationForest(random_state=0).fit(a).score_samples(b))
    assert auroc["vae"] > auroc["iforest"] + 0.03, auroc
    assert auroc["ae"] >= auroc["iforest"] - 0.05, auroc


def test_a_vae_imputes_a_category_from_the_numbers_it_goes_with(tmp_path):
    full, _ = shop(600, seed=5)
    gappy = full.copy()
    hidden = np.random.default_rng(6).random(len(full)) < 0.3
    gappy.loc[hidden, "colour"] = None
    run = vaekit.train(gappy[["colour", "size", "noise"]], out=tmp_path / "run", epochs=60, progress=False)
    filled = run.impute(gappy[["colour", "size", "noise"]])
    assert isinstance(filled, pd.DataFrame) and list(filled.columns) == ["colour", "size", "noise"]
    right = (filled.loc[hidden, "colour"] == full.loc[hidden, "colour"]).mean()
    mode = (full.loc[hidden, "colour"] == full["colour"].mode()[0]).mean()
    assert right > 0.8 and right > mode + 0.3, (right, mode)
    kept = ~hidden
    assert (filled.loc[kept, "colour"] == full.loc[kept, "colour"]).all()
    np.testing.assert_array_equal(filled["size"], full["size"])  # observed cells exactly as given


def test_a_csv_with_text_and_empty_cells_goes_through_every_command(tmp_path, capsys):
    frame, marks = shop(300, seed=7, anomalies=15, missing=0.15)
    frame["label"] = marks
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    assert ",," in path.read_text()  # empty cells, as a spreadsheet writes them
    run, det = str(tmp_path / "run"), str(tmp_path / "det")
    assert main(["train", "--data", str(path), "--out", run, "--epochs", "5", "--quiet", "--no-report",
                 "--column-types", "store=categorical"]) == 0
    assert main(["info", run]) == 0
    shown = capsys.readouterr().out
    # (True/False text is a category of its own spelling: a later 'unknown' is unseen, not an error)
    assert "colour  categorical, 3 levels (blue, green, red)" in shown and "member  categorical, 2 levels" in shown
    assert "store   categorical, 3 levels (101, 205, 310)" in shown
    assert main(["impute", run, "--data", str(path), "--out", str(tmp_path / "filled.csv")]) == 0
    filled = pd.read_csv(tmp_path / "filled.csv")
    assert list(filled.columns) == ["colour", "size", "member", "store", "noise"] and not filled.isna().any().any()
    assert set(filled["colour"]) <= set(CENTRES) and set(filled["store"]) <= {101, 205, 310}
    given = frame["colour"].notna()
    assert (filled.loc[given, "colour"] == frame.loc[given, "colour"]).all()
    assert main(["detect", "fit", "--data", str(path), "--out", det, "--quiet", "--column-types",
                 "store=categorical"]) == 0
    assert main(["detect", "score", det, "--data", str(path), "--out", str(tmp_path / "s.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["auroc"] > 0.8
    scores = pd.read_csv(tmp_path / "s.csv")
    assert len(scores) == 300 and np.isfinite(scores["score"]).all()
    for command in (["reconstruct", run], ["sample", run, "--n", "5"]):
        assert main([*command, *(["--data", str(path)] if command[0] == "reconstruct" else []),
                     "--out", str(tmp_path / "rows.csv")]) == 0
        rows = pd.read_csv(tmp_path / "rows.csv")
        assert set(rows["colour"]) <= set(CENTRES) and set(rows["member"]) <= {True, False}
    assert main(["sample", run, "--n", "400", "--out", str(tmp_path / "many.csv")]) == 0
    drawn = pd.read_csv(tmp_path / "many.csv")["colour"].value_counts(normalize=True)
    assert len(drawn) == 3 and drawn.min() > 0.1  # levels drawn with the model's probabilities, not the mode
    assert main(["interpolate", run, "--data", str(path), "--from", "0", "--to", "1", "--steps", "4",
                 "--out", str(tmp_path / "path.csv")]) == 0
    walk = pd.read_csv(tmp_path / "path.csv")
    assert len(walk) == 4 and set(walk["colour"]) <= set(CENTRES)
    assert main(["impute", run, "--data", str(path), "--out", str(tmp_path / "filled.parquet")]) == 0
    typed = pd.read_parquet(tmp_path / "filled.parquet")  # one type per column: numbers, text, bools
    assert typed["size"].dtype == np.float64 and typed["colour"].notna().all() and len(typed) == 300
    np.testing.assert_allclose(typed["size"][frame["size"].notna()], frame["size"].dropna(), rtol=1e-12)
    capsys.readouterr()
    for command in (["impute", det, "--data", str(path), "--out", str(tmp_path / "d.csv")],
                    ["denoise", run, "--data", str(path), "--out", str(tmp_path / "d.csv")]):
        assert main(command) == 2  # a detector is no run; denoising a table of text means nothing
        assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / "d.csv").exists()
    assert main(["impute", run, "--data", str(path), "--out", str(tmp_path / "filled.npy")]) == 2
    assert "colour, member, store" in capsys.readouterr().err and not (tmp_path / "filled.npy").exists()


def test_a_later_file_is_read_with_the_training_levels(tmp_path, capsys):
    frame, _ = shop(200, seed=8)
    frame[["colour", "size"]].to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"colour": ["green", "teal"], "size": [4.0, 4.0]}).to_csv(tmp_path / "new.csv", index=False)
    run = vaekit.train(str(tmp_path / "train.csv"), out=tmp_path / "run", epochs=3, progress=False)
    ds = run.dataset(str(tmp_path / "new.csv"), units=False)
    np.testing.assert_array_equal(ds.x.numpy()[:, :4], [[0, 1, 0, 0], [0, 0, 0, 1]])  # teal: unseen
    pd.DataFrame({"size": [1.0], "colour": ["red"]}).to_csv(tmp_path / "swapped.csv", index=False)
    assert main(["reconstruct", str(tmp_path / "run"), "--data", str(tmp_path / "swapped.csv"),
                 "--out", str(tmp_path / "r.csv")]) == 2
    assert "has the columns in another order" in capsys.readouterr().err
    assert load_dataset(str(tmp_path / "train.csv")).schema == vaekit.load(tmp_path / "run").config.data.table_schema()


def test_impute_gives_every_observed_cell_back_as_written(tmp_path):
    """Observed cells, even of a level never seen in training, with spaces, or a code with a
    leading zero, come back as they were; only the empty ones are filled."""
    rng = np.random.default_rng(9)
    zips = rng.choice(["02134", "10115", "00501"], 200)
    lines = ["zip,city,v"] + [f"{z}, {c},{rng.normal():.3f}" for z, c in zip(zips, rng.choice(["Oslo", "Rome"], 200))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--out", run, "--epochs", "3", "--quiet", "--no-report",
                 "--column-types", "zip=categorical"]) == 0
    (tmp_path / "new.csv").write_text("zip,city,v\n99999, Lima,1.5\n02134,,\n,  Oslo,2.25\n")
    assert main(["impute", run, "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "f.csv")]) == 0
    rows = (tmp_path / "f.csv").read_text().splitlines()
    assert rows[1] == "99999, Lima,1.5"  # unseen zip and city, as written
    zip_, city, v = rows[2].split(",")
    assert zip_ == "02134" and city.strip() in ("Oslo", "Rome") and float(v) == float(v)
    assert rows[3].split(",")[0] in ("02134", "10115", "00501") and rows[3].endswith(",  Oslo,2.25")
    frame = pd.DataFrame({"zip": ["99999", None], "city": ["Lima", "Rome"], "v": [np.nan, 0.5]})
    back = vaekit.load(run).impute(frame)
    assert back.loc[0, "zip"] == "99999" and back.loc[0, "city"] == "Lima" and back.loc[1, "v"] == 0.5


def test_dataframe_columns_keep_their_types_and_names(tmp_path):
    frame = pd.DataFrame({" city ": ["a", "b", None, "a"] * 30, "ok": pd.array([True, None, False, True] * 30),
                          "n": pd.array([1, 2, None, 4] * 30, dtype="Int64")})
    run = vaekit.train(frame, out=tmp_path / "run", epochs=2, progress=False, column_types={"n": "categorical"})
    back = run.impute(frame)
    assert list(back.columns) == [" city ", "ok", "n"] and not back.isna().any().any()
    assert str(back["ok"].dtype) == "boolean" and str(back["n"].dtype) == "Int64"
    assert back["n"].tolist()[:2] == [1, 2]
    assert run.reconstruct(frame).shape == (120, 3) and run.sample(7).shape == (7, 3)
    metrics = run.evaluate(frame)  # mse over the numbers (none here), the rest as a share of wrong levels
    assert 0 <= metrics["category_error"] <= 1 and metrics["mse"] == 0


@pytest.mark.parametrize("text, message", [
    ("a,a,b\n1,2,3\n4,5,6\n", "column.s. 'a' appear more than once"),
    ("a,b\n1,\n2,\n", "column 'b' has no values"),
])
def test_tables_that_say_nothing_twice_or_at_all_are_one_line(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(VaekitError, match=message):
        load_dataset(str(tmp_path / "t.csv"))


def test_a_table_trains_for_steps_not_epochs_where_they_are_not_given(tmp_path):
    """50 epochs of a 300-row table are 150 steps: a table's default training is at least 2,000
    steps, and its patience at least 500 steps, unless the user sets them."""
    from vaekit.config import TrainConfig, table_schedule

    t = table_schedule(TrainConfig(), rows=300, val_fraction=0.1, given=set())
    assert (t.epochs, t.patience) == (667, 167)  # 270 training rows: 3 batches of 128 per epoch
    assert table_schedule(TrainConfig(), rows=100_000, val_fraction=0.1, given=set()).epochs == 50
    assert table_schedule(TrainConfig(epochs=7), rows=300, val_fraction=0.1, given={"epochs"}).epochs == 7
    frame, _ = shop(300, seed=10)
    run = vaekit.train(frame, out=tmp_path / "run", epochs=2, progress=False, report=False)
    assert (run.config.train.epochs, run.config.train.patience) == (2, 167)


def test_serve_takes_and_gives_a_tables_own_cells(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vaekit.serve import create_app

    frame, _ = shop(200, seed=11, missing=0.1)
    frame.to_csv(tmp_path / "shop.csv", index=False)  # (a run of a file has examples for the explorer)
    vaekit.train(str(tmp_path / "shop.csv"), out=tmp_path / "run", epochs=3, progress=False, report=False,
                 column_types={"store": "categorical"})
    client = TestClient(create_app(tmp_path / "run"))
    info = client.get("/info").json()
    assert info["columns"] == ["colour", "size", "member", "store", "noise"]
    rows = [["red", 0.1, "True", 101, 0.3], {"colour": "purple", "size": None, "store": 205}]  # unseen, gaps
    out = client.post("/reconstruct", json={"inputs": rows})
    assert out.status_code == 200, out.text
    outputs = out.json()["outputs"]
    assert len(outputs) == 2 and all(r[0] in CENTRES and isinstance(r[1], float) for r in outputs)
    assert len(client.post("/encode", json={"inputs": rows}).json()["codes"]) == 2
    samples = client.get("/sample?n=5").json()["samples"]
    assert len(samples) == 5 and {r[0] for r in samples} <= set(CENTRES)
    space = client.get("/space")
    assert space.status_code == 200 and space.json()["examples"]["inputs"][0][0] in CENTRES
    assert client.post("/reconstruct", json={"inputs": space.json()["examples"]["inputs"]}).status_code == 200
    bad = client.post("/reconstruct", json={"inputs": [["red", 0.1]]})
    assert bad.status_code == 422 and "must hold 5 cells" in bad.json()["error"]
    bad = client.post("/reconstruct", json={"inputs": {"colour": "red"}})  # one line, not pydantic's dump
    assert bad.status_code == 422 and "\n" not in bad.json()["error"] and "a list of rows" in bad.json()["error"]

    det = vaekit.AnomalyDetector(epochs=5, random_state=0, column_types={"store": "categorical"}).fit(frame)
    det.save(tmp_path / "det")
    client = TestClient(create_app(tmp_path / "det"))
    got = client.post("/score", json={"inputs": rows}).json()
    assert len(got["scores"]) == 2 and all(np.isfinite(got["scores"]))
    csv = frame.head(20).to_csv(index=False)
    up = client.post("/score", files=[("file", ("new.csv", csv.encode(), "text/csv"))]).json()
    np.testing.assert_allclose(up["scores"], det.decision_function(frame.head(20)), rtol=1e-5)


def test_a_code_is_one_level_however_a_file_spells_it():
    """pandas writes an integer column with gaps as 31.0; a later DataFrame holds 31; a code with
    a leading zero stays text; true/TRUE/True are one level."""
    schema = as_dataset(pd.DataFrame({"code": ["31.0", "44.0", None, "31.0"], "zip": ["02134", "2134", "x", "y"],
                                      "ok": ["True", "false", "TRUE", "true"]}),
                        column_types={"code": "categorical"}).schema
    assert [c.levels for c in schema.columns] == [("31", "44"), ("02134", "2134", "x", "y"), ("False", "True")]
    later = as_dataset(pd.DataFrame({"code": [31, 44.0], "zip": ["02134", "02134"], "ok": [True, "False"]}),
                       schema=schema).x.numpy()
    assert not later[:, [2, 7, 10]].any()  # no row unseen


def test_a_question_mark_is_a_missing_cell_as_in_the_uci_tables():
    ds = as_dataset(pd.DataFrame({"work": ["Private", "?", " ?", "Gov"], "age": ["39", "?", "50", "41"]}))
    assert ds.schema.columns[0].levels == ("Gov", "Private") and np.isnan(ds.x.numpy()[1]).all()
    assert ds.schema.columns[1].kind == "continuous"


def test_a_glitch_that_sets_a_columns_scale_is_warned_of(tmp_path):
    """One salary of 1e7 among a few hundred of about 60 squeezes the rest of the column to one
    point after standardising: training says so, naming the column and the value; a clean table
    and a heavy-tailed one (a lognormal) train without a word."""
    frame, _ = shop(300, seed=12)
    clean = frame[["colour", "size", "noise"]].copy()
    clean["noise"] = np.random.default_rng(0).lognormal(0, 2, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", vaekit.VaekitWarning)
        vaekit.train(clean, out=tmp_path / "clean", epochs=1, progress=False, report=False)
    glitch = clean.copy()
    glitch.loc[5, "size"] = 1e7
    with pytest.warns(vaekit.VaekitWarning, match=r"column\(s\) size \(1e\+07 where half lie within .* correct or "
                                                   r"empty those cells"):
        vaekit.train(glitch, out=tmp_path / "glitch", epochs=1, progress=False, report=False)
