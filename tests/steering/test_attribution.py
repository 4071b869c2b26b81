"""Attribution and ablation against direct recomputation on the seeded tiny model (plain autograd and hooks)."""

from __future__ import annotations

import pytest
import torch
from bs4 import BeautifulSoup

from app.ml.attribution import ablate, attribute
from app.ml.hooks import hooked
from app.ml.sae import load_sae, save_sae
from app.ml.steering import prompt_token_ids
from tests.ml.factories import build_sae_cfg, random_sae_tensors

TARGET, BASELINE = 5, 9


@pytest.fixture(scope="module")
def second_sae(tmp_path_factory):
    cfg = build_sae_cfg(d_sae=48, hook_name="blocks.2.hook_resid_post", hook_layer=2)
    return load_sae(save_sae(random_sae_tensors(cfg, seed=6), cfg, tmp_path_factory.mktemp("attr") / "sae"))


@pytest.fixture(scope="module")
def ids(tiny_lm):
    return prompt_token_ids(tiny_lm, "The quick brown fox")


def _grad_at(lm, hook, ids, baseline):
    """∂m/∂x at ``hook`` and x itself, by plain autograd on an unmodified model."""
    box = {}

    def keep(x):
        x = x.detach().requires_grad_(True)
        box["x"] = x
        return x

    with torch.enable_grad(), hooked(lm, hook, keep):
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        m = logits[TARGET] - (logits[BASELINE] if baseline is not None else 0)
        (grad,) = torch.autograd.grad(m, [box["x"]])
    return grad[0], box["x"].detach()[0], float(m.detach())


@pytest.mark.parametrize("baseline", [None, BASELINE])
def test_attribution_is_activation_times_gradient_and_sums_exactly(tiny_lm, tied_sae, second_sae, ids, baseline):
    saes = {"l1": tied_sae, "l2": second_sae}
    out = attribute(tiny_lm, saes, ids, TARGET, baseline, top_k=200)
    for name, sae in saes.items():
        g, x, m = _grad_at(tiny_lm, sae.cfg.hook_name, ids, baseline)
        f = sae.encode(x)  # [pos, d_sae]
        expected = (f * (g @ sae.W_dec.T)).sum(0)  # f_i · (W_dec[i] · g), summed over positions
        got = {r["feature"]: r["attribution"] for r in out["features"] if r["source"] == name}
        assert got, name
        for i, value in got.items():
            assert value == pytest.approx(float(expected[i]), abs=1e-5)
        row = next(s for s in out["saes"] if s["source"] == name)
        assert row["total"] == pytest.approx(float((x * g).sum()), rel=1e-4, abs=1e-5)
        assert row["features_total"] + row["error"] + row["bias"] == pytest.approx(row["total"], rel=1e-4, abs=1e-5)
        assert row["features_total"] == pytest.approx(float(expected.sum()), rel=1e-4, abs=1e-5)
        assert out["metric"] == pytest.approx(m, rel=1e-5)
    assert all(p.grad is None for p in tiny_lm.model.parameters())  # nothing left behind in the model
    ranked = [abs(r["attribution"]) for r in out["features"]]
    assert ranked == sorted(ranked, reverse=True)


def test_ablation_matches_subtracting_the_decoder_image(tiny_lm, tied_sae, ids):
    feature = int(tied_sae.encode(_grad_at(tiny_lm, tied_sae.cfg.hook_name, ids, None)[1]).sum(0).argmax())
    out = ablate(tiny_lm, tied_sae, feature, ids, TARGET, BASELINE)

    def remove(x):
        return x - tied_sae.encode(x)[..., feature:feature + 1] * tied_sae.W_dec[feature]

    with torch.inference_mode():
        clean = torch.softmax(tiny_lm.model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
        with hooked(tiny_lm, tied_sae.cfg.hook_name, remove):
            ablated = torch.softmax(tiny_lm.model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
    assert out["before"]["target_prob"] == pytest.approx(float(clean[TARGET]), rel=1e-5)
    assert out["after"]["target_prob"] == pytest.approx(float(ablated[TARGET]), rel=1e-5)
    assert out["after"]["baseline_prob"] == pytest.approx(float(ablated[BASELINE]), rel=1e-5)
    assert out["change"] == pytest.approx(float(ablated[TARGET] - clean[TARGET]), abs=1e-6)
    assert out["change"] != 0


@pytest.fixture
def client(make_app_client, app_bundle):
    bundle, _, _ = app_bundle
    return make_app_client(bundle=bundle)


def _one_token(bundle, text=" the"):
    ids = bundle.lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, "fixture: the target must be one token"
    return text


def test_api_ranks_features_of_every_loaded_sae_and_ablates_one(client, app_bundle):
    bundle, _, _ = app_bundle
    target = _one_token(bundle)
    body = {"text": "The people of the United States and", "target": target, "baseline": "#0"}
    out = client.post("/api/v1/live/attribution", json=body)
    assert out.status_code == 200, out.text
    out = out.json()
    assert {r["source"] for r in out["features"]} <= set(bundle.saes) and len(out["features"]) == 30
    assert {s["source"] for s in out["sae_totals"]} == set(bundle.saes)
    for s in out["sae_totals"]:
        assert s["features_total"] + s["error"] + s["bias"] == pytest.approx(s["total"], rel=1e-3, abs=1e-4)
    top = out["features"][0]
    ablated = client.post("/api/v1/live/attribution/ablate", json={**body, "source": top["source"],
                                                                   "feature": top["feature"]}).json()
    assert ablated["before"]["target_prob"] == pytest.approx(out["target_prob"], rel=1e-4)
    assert ablated["change"] == pytest.approx(ablated["after"]["target_prob"] - ablated["before"]["target_prob"])


def test_page_form_results_and_ablate_button(client, app_bundle):
    bundle, _, _ = app_bundle
    target = _one_token(bundle)
    form = BeautifulSoup(client.get("/live/attribution?text=Hello").text, "html.parser")
    assert form.select_one("#attr-text").text == "Hello" and form.select_one("table.attribution") is None
    data = {"text": "The people of the United States and", "target": target}
    page = BeautifulSoup(client.post("/live/attribution", data=data).text, "html.parser")
    rows = page.select("table.attribution tbody tr")
    assert len(rows) == 30
    assert len(page.select("table.attribution-saes tbody tr")) == len(bundle.saes)
    first = rows[0]
    fields = {i["name"]: i["value"] for i in first.select("form.ablate-form input[type=hidden]")}
    fragment = client.post("/live/attribution/ablate", data=fields, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert BeautifulSoup(fragment.text, "html.parser").select_one("span.ablation[data-change]") is not None
    block = client.post("/live/attribution", data=data, headers={"HX-Request": "true"})
    assert block.text.lstrip().startswith('<section id="attribution-results"')


def test_a_target_of_several_tokens_is_refused_with_the_pieces(client):
    bad = client.post("/api/v1/live/attribution", json={"text": "Hello", "target": " internationalisation"})
    assert bad.status_code == 422 and "tokens (" in bad.json()["detail"] and "#N" in bad.json()["detail"]
    page = client.post("/live/attribution", data={"text": "Hello", "target": ""})
    assert page.status_code == 422
    soup = BeautifulSoup(page.text, "html.parser")
    assert "give the next token" in soup.select_one(".field-error").text and soup.select_one("#attr-text").text == "Hello"
    assert client.post("/api/v1/live/attribution", json={"text": "Hi", "target": "#99999999"}).status_code == 422
