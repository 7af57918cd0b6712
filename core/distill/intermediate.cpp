#include "core/distill/intermediate.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <limits>

#include "core/common/error.h"

namespace kdscope::core {

namespace {

/// Mean of a per-token [B, Len] (or per-example [B]) value over the real tokens.
torch::Tensor maskedMean(const torch::Tensor& perToken, const torch::Tensor& mask) {
  if (!mask.defined() || perToken.dim() == 1) {
    return perToken.mean();
  }
  auto weight = mask.to(perToken.dtype());
  return (perToken * weight).sum() / weight.sum().clamp_min(1.0);
}

/// A critic encoder: Linear -> ReLU -> Linear into kCriticDim.
torch::nn::Sequential criticEncoder(int inputWidth) {
  return torch::nn::Sequential(torch::nn::Linear(inputWidth, kCriticDim), torch::nn::ReLU(),
                               torch::nn::Linear(kCriticDim, kCriticDim));
}

/// [CLS] state of [B, Len, D] token states; [B, D] states pass through.
torch::Tensor clsState(const torch::Tensor& hidden) {
  return hidden.dim() == 3 ? hidden.select(/*dim=*/1, /*index=*/0) : hidden;
}

} // namespace

LayerMap makeLayerMap(const ObjectiveSpec& objective, int studentLayers, int teacherLayers, bool withAttention) {
  const int ls = studentLayers;
  const int lt = teacherLayers;
  if (ls < 1 || lt < 1) {
    throw InputError("objective.layer_map: needs models with at least one layer (student " + std::to_string(ls) +
                     ", teacher " + std::to_string(lt) + ")");
  }
  LayerMap map;
  if (objective.layerMap == "uniform") {
    for (int i = 0; i <= ls; ++i) {
      map.hidden.push_back({i, (i * lt) / ls});
    }
    if (withAttention) {
      if (ls > lt) {
        throw InputError("objective.layer_map: 'uniform' maps attention layers only for a student with at most "
                         "as many layers as the teacher (student " + std::to_string(ls) + ", teacher " +
                         std::to_string(lt) + ")");
      }
      for (int i = 0; i < ls; ++i) {
        map.attention.push_back({i, ((i + 1) * lt) / ls - 1});
      }
    }
  } else if (objective.layerMap == "last") {
    if (ls > lt) {
      throw InputError("objective.layer_map: 'last' needs a student with at most as many layers as the teacher "
                       "(student " + std::to_string(ls) + ", teacher " + std::to_string(lt) + ")");
    }
    for (int i = 0; i <= ls; ++i) {
      map.hidden.push_back({i, lt - ls + i});
    }
    if (withAttention) {
      for (int i = 0; i < ls; ++i) {
        map.attention.push_back({i, lt - ls + i});
      }
    }
  } else if (objective.layerMap == "list") {
    if (static_cast<int>(objective.layerList.size()) != ls + 1) {
      throw InputError("objective.layer_map: must list " + std::to_string(ls + 1) + " teacher hidden states, got " +
                       std::to_string(objective.layerList.size()));
    }
    for (int i = 0; i <= ls; ++i) {
      const int j = objective.layerList[static_cast<std::size_t>(i)];
      if (j < 0 || j > lt) {
        throw InputError("objective.layer_map[" + std::to_string(i) + "]: must be in [0, " + std::to_string(lt) +
                         "], got " + std::to_string(j));
      }
      map.hidden.push_back({i, j});
      if (withAttention && i > 0) {
        if (j == 0) {
          throw InputError("objective.layer_map[" + std::to_string(i) +
                           "]: maps a student layer to the teacher's embeddings, which have no attention map");
        }
        map.attention.push_back({i - 1, j - 1});
      }
    }
  } else {
    throw InputError("objective.layer_map: unknown map '" + objective.layerMap + "'");
  }
  return map;
}

bool usesAttentionTerms(const ObjectiveSpec& objective) {
  return objective.attentionKl > 0.0 || objective.attentionMse > 0.0;
}

bool usesIntermediateTerms(const ObjectiveSpec& objective) {
  return usesAttentionTerms(objective) || objective.hiddenMse > 0.0 || objective.hiddenCosine > 0.0 ||
         objective.pkd > 0.0 || objective.infoNce > 0.0 || objective.miAlpha > 0.0;
}

torch::Tensor hiddenMseLoss(const torch::Tensor& hs, const torch::Tensor& ht, const torch::Tensor& mask) {
  return maskedMean((hs - ht).pow(2).mean(/*dim=*/-1), mask);
}

torch::Tensor hiddenCosineLoss(const torch::Tensor& hs, const torch::Tensor& ht, const torch::Tensor& mask) {
  auto cosine = torch::nn::functional::cosine_similarity(
      hs, ht, torch::nn::functional::CosineSimilarityFuncOptions().dim(-1).eps(1e-8));
  return maskedMean(1.0 - cosine, mask);
}

torch::Tensor pkdLoss(const torch::Tensor& hs, const torch::Tensor& ht) {
  const auto options = torch::nn::functional::NormalizeFuncOptions().p(2.0).dim(-1).eps(1e-12);
  auto a = torch::nn::functional::normalize(hs, options);
  auto b = torch::nn::functional::normalize(ht, options);
  return (a - b).pow(2).sum(/*dim=*/-1).mean();
}

torch::Tensor attentionKlLoss(const torch::Tensor& teacherProbs, const torch::Tensor& studentScores,
                              const torch::Tensor& mask) {
  const auto batch = studentScores.size(0);
  const auto len = studentScores.size(-1);
  auto keyMask = mask.view({batch, 1, 1, len});
  // Zero (not -inf) at padding keys before any reduction over heads: logsumexp over all
  // -inf entries has a NaN gradient.
  auto logq = torch::log_softmax(studentScores, /*dim=*/-1).masked_fill(keyMask.logical_not(), 0.0);
  auto p = teacherProbs;
  if (teacherProbs.size(1) != studentScores.size(1)) {
    logq = torch::logsumexp(logq, /*dim=*/1, /*keepdim=*/true) - std::log(static_cast<double>(studentScores.size(1)));
    p = p.mean(/*dim=*/1, /*keepdim=*/true);
  }
  auto perKey = (torch::xlogy(p, p) - p * logq).masked_fill(keyMask.logical_not(), 0.0);
  auto perRow = perKey.sum(/*dim=*/-1); // [B, H, Len]
  auto queryWeight = mask.to(perRow.dtype()).view({batch, 1, len}).expand_as(perRow);
  return (perRow * queryWeight).sum() / queryWeight.sum().clamp_min(1.0);
}

torch::Tensor attentionScoreMseLoss(const torch::Tensor& teacherScores, const torch::Tensor& studentScores,
                                    const torch::Tensor& mask) {
  const auto batch = studentScores.size(0);
  const auto len = studentScores.size(-1);
  auto pairMask = (mask.view({batch, 1, len, 1}) & mask.view({batch, 1, 1, len})); // [B, 1, Len, Len]
  auto s = studentScores.masked_fill(pairMask.logical_not(), 0.0);
  auto t = teacherScores.masked_fill(pairMask.logical_not(), 0.0);
  if (s.size(1) != t.size(1)) {
    s = s.mean(/*dim=*/1, /*keepdim=*/true);
    t = t.mean(/*dim=*/1, /*keepdim=*/true);
  }
  auto weight = pairMask.to(s.dtype()).expand_as(s);
  return ((s - t).pow(2) * weight).sum() / weight.sum().clamp_min(1.0);
}

torch::Tensor infoNceBound(const torch::Tensor& scores) {
  const auto batch = scores.size(0);
  return std::log(static_cast<double>(batch)) + (scores.diagonal() - torch::logsumexp(scores, /*dim=*/1)).mean();
}

torch::Tensor miAlphaBound(const torch::Tensor& scores, const torch::Tensor& logBaseline, double alpha) {
  const auto batch = scores.size(0);
  if (batch < 2) {
    return scores.sum() * 0.0;
  }
  const double b = static_cast<double>(batch);
  const auto options = torch::TensorOptions().dtype(torch::kBool).device(scores.device());
  auto eye = torch::eye(batch, options);
  // N[i, j] = log mean_{k != j} e^S[i, k]: expand to [i, j, k] and drop k == j. Exact (no
  // cancellation) at O(B^3) memory, which is small at training batch sizes.
  auto expanded = scores.unsqueeze(1).expand({batch, batch, batch});
  auto loo = expanded.masked_fill(eye.unsqueeze(0), -std::numeric_limits<double>::infinity());
  auto n = torch::logsumexp(loo, /*dim=*/2) - std::log(b - 1.0);
  // A[i, j] = log(alpha e^N[i, j] + (1 - alpha) e^b_i); log 0 = -inf covers alpha = 0 or 1.
  const double logAlpha = alpha > 0.0 ? std::log(alpha) : -std::numeric_limits<double>::infinity();
  const double logOneMinus = alpha < 1.0 ? std::log(1.0 - alpha) : -std::numeric_limits<double>::infinity();
  torch::Tensor a;
  if (alpha >= 1.0) {
    a = n;
  } else if (alpha <= 0.0) {
    a = logBaseline.view({batch, 1}).expand({batch, batch});
  } else {
    a = torch::logaddexp(n + logAlpha, logBaseline.view({batch, 1}).expand({batch, batch}) + logOneMinus);
  }
  auto offDiagonal = eye.logical_not();
  auto joint = (scores.diagonal().view({batch, 1}) - a).masked_select(offDiagonal).mean();
  auto marginalArgs = (scores - a.diagonal().view({batch, 1})).masked_select(offDiagonal);
  auto marginal = torch::exp(torch::logsumexp(marginalArgs, /*dim=*/0) - std::log(b * (b - 1.0)));
  return 1.0 + joint - marginal;
}

torch::Tensor poolTokens(const torch::Tensor& hidden, const torch::Tensor& mask) {
  if (hidden.dim() == 2) {
    return hidden;
  }
  if (!mask.defined()) {
    return hidden.mean(/*dim=*/1);
  }
  auto weight = mask.unsqueeze(-1).to(hidden.dtype());
  return (hidden * weight).sum(/*dim=*/1) / weight.sum(/*dim=*/1).clamp_min(1.0);
}

std::vector<int> hiddenWidths(const ArchitectureSpec& spec, int inputDim) {
  if (spec.type == "mlp") {
    std::vector<int> widths = {inputDim};
    widths.insert(widths.end(), spec.hidden.begin(), spec.hidden.end());
    return widths;
  }
  return std::vector<int>(static_cast<std::size_t>(spec.layers + 1), spec.width);
}

IntermediateObjectiveImpl::IntermediateObjectiveImpl(const ObjectiveSpec& objective, std::vector<int> studentWidths,
                                                     std::vector<int> teacherWidths)
    : m_objective(objective), m_studentWidths(std::move(studentWidths)), m_teacherWidths(std::move(teacherWidths)) {
  m_map = makeLayerMap(objective, static_cast<int>(m_studentWidths.size()) - 1,
                       static_cast<int>(m_teacherWidths.size()) - 1, usesAttentionTerms(objective));
  m_projections = register_module("projections", torch::nn::ModuleList());
  m_nceStudent = register_module("infonce_student", torch::nn::ModuleList());
  m_nceTeacher = register_module("infonce_teacher", torch::nn::ModuleList());
  m_miStudent = register_module("mi_student", torch::nn::ModuleList());
  m_miTeacher = register_module("mi_teacher", torch::nn::ModuleList());
  m_miBaseline = register_module("mi_baseline", torch::nn::ModuleList());
  const bool projected = objective.hiddenMse > 0.0 || objective.hiddenCosine > 0.0 || objective.pkd > 0.0;
  for (const LayerPair& pair : m_map.hidden) {
    const int ws = m_studentWidths[static_cast<std::size_t>(pair.student)];
    const int wt = m_teacherWidths[static_cast<std::size_t>(pair.teacher)];
    if (projected && ws != wt) {
      m_projectionIndex.push_back(static_cast<int>(m_projections->size()));
      m_projections->push_back(torch::nn::Linear(ws, wt));
    } else {
      m_projectionIndex.push_back(-1);
    }
    if (objective.infoNce > 0.0) {
      m_nceStudent->push_back(criticEncoder(ws));
      m_nceTeacher->push_back(criticEncoder(wt));
    }
    if (objective.miAlpha > 0.0) {
      m_miStudent->push_back(criticEncoder(ws));
      m_miTeacher->push_back(criticEncoder(wt));
      m_miBaseline->push_back(torch::nn::Linear(kCriticDim, 1));
    }
  }
}

torch::Tensor IntermediateObjectiveImpl::project(std::size_t pair, const torch::Tensor& hs) {
  const int index = m_projectionIndex[pair];
  if (index < 0) {
    return hs;
  }
  return m_projections[static_cast<std::size_t>(index)]->as<torch::nn::Linear>()->forward(hs);
}

torch::Tensor IntermediateObjectiveImpl::criticScores(torch::nn::ModuleList& studentEncoders,
                                                      torch::nn::ModuleList& teacherEncoders, std::size_t pair,
                                                      const torch::Tensor& s, const torch::Tensor& t,
                                                      torch::Tensor* studentCode) {
  auto gs = studentEncoders[pair]->as<torch::nn::Sequential>()->forward(s);
  auto gt = teacherEncoders[pair]->as<torch::nn::Sequential>()->forward(t);
  if (studentCode != nullptr) {
    *studentCode = gs;
  }
  return torch::matmul(gs, gt.transpose(0, 1)); // S[i, j] = f(student_i, teacher_j)
}

void IntermediateObjectiveImpl::addTerms(const ForwardOutput& student, const ForwardOutput& teacher,
                                         const torch::Tensor& mask, LossTerms& out) {
  const auto add = [&out](const char* name, double weight, const torch::Tensor& value) {
    out.terms.emplace_back(name, value);
    out.total = out.total + weight * widenedTerm(value); // bf16 widened: objectives.h
  };
  const auto meanOverHiddenPairs = [&](const std::function<torch::Tensor(std::size_t, const torch::Tensor&,
                                                                         const torch::Tensor&)>& term) {
    torch::Tensor sum;
    for (std::size_t p = 0; p < m_map.hidden.size(); ++p) {
      const auto& hs = student.hidden[static_cast<std::size_t>(m_map.hidden[p].student)];
      const auto& ht = teacher.hidden[static_cast<std::size_t>(m_map.hidden[p].teacher)];
      auto value = term(p, hs, ht);
      sum = sum.defined() ? sum + value : value;
    }
    return sum / static_cast<double>(m_map.hidden.size());
  };
  const auto meanOverAttentionPairs = [&](const std::function<torch::Tensor(std::size_t)>& term) {
    torch::Tensor sum;
    for (std::size_t p = 0; p < m_map.attention.size(); ++p) {
      auto value = term(p);
      sum = sum.defined() ? sum + value : value;
    }
    return sum / static_cast<double>(m_map.attention.size());
  };

  if (m_objective.hiddenMse > 0.0) {
    add("hidden_mse", m_objective.hiddenMse,
        meanOverHiddenPairs([&](std::size_t p, const torch::Tensor& hs, const torch::Tensor& ht) {
          return hiddenMseLoss(project(p, hs), ht, mask);
        }));
  }
  if (m_objective.hiddenCosine > 0.0) {
    add("hidden_cosine", m_objective.hiddenCosine,
        meanOverHiddenPairs([&](std::size_t p, const torch::Tensor& hs, const torch::Tensor& ht) {
          return hiddenCosineLoss(project(p, hs), ht, mask);
        }));
  }
  if (m_objective.pkd > 0.0) {
    add("pkd", m_objective.pkd, meanOverHiddenPairs([&](std::size_t p, const torch::Tensor& hs, const torch::Tensor& ht) {
          return pkdLoss(project(p, clsState(hs)), clsState(ht));
        }));
  }
  if (m_objective.attentionKl > 0.0) {
    add("attention_kl", m_objective.attentionKl, meanOverAttentionPairs([&](std::size_t p) {
          const auto& pair = m_map.attention[p];
          return attentionKlLoss(teacher.attention[static_cast<std::size_t>(pair.teacher)],
                                 student.scores[static_cast<std::size_t>(pair.student)], mask);
        }));
  }
  if (m_objective.attentionMse > 0.0) {
    add("attention_mse", m_objective.attentionMse, meanOverAttentionPairs([&](std::size_t p) {
          const auto& pair = m_map.attention[p];
          return attentionScoreMseLoss(teacher.scores[static_cast<std::size_t>(pair.teacher)],
                                       student.scores[static_cast<std::size_t>(pair.student)], mask);
        }));
  }
  if (m_objective.infoNce > 0.0) {
    add("infonce", m_objective.infoNce,
        meanOverHiddenPairs([&](std::size_t p, const torch::Tensor& hs, const torch::Tensor& ht) {
          return -infoNceBound(
              criticScores(m_nceStudent, m_nceTeacher, p, poolTokens(hs, mask), poolTokens(ht, mask), nullptr));
        }));
  }
  if (m_objective.miAlpha > 0.0) {
    add("mi_alpha", m_objective.miAlpha,
        meanOverHiddenPairs([&](std::size_t p, const torch::Tensor& hs, const torch::Tensor& ht) {
          torch::Tensor code;
          auto scores = criticScores(m_miStudent, m_miTeacher, p, poolTokens(hs, mask), poolTokens(ht, mask), &code);
          auto baseline = m_miBaseline[p]->as<torch::nn::Linear>()->forward(code).squeeze(-1);
          return -miAlphaBound(scores, baseline, m_objective.alpha);
        }));
  }
}

std::string IntermediateObjectiveImpl::describeJson() const {
  nlohmann::json j;
  j["layer_map"] = m_objective.layerMap == "list" ? nlohmann::json(m_objective.layerList)
                                                  : nlohmann::json(m_objective.layerMap);
  nlohmann::json hidden = nlohmann::json::array();
  for (std::size_t p = 0; p < m_map.hidden.size(); ++p) {
    hidden.push_back({{"student", m_map.hidden[p].student},
                      {"teacher", m_map.hidden[p].teacher},
                      {"projection", m_projectionIndex[p] >= 0}});
  }
  nlohmann::json attention = nlohmann::json::array();
  for (const auto& pair : m_map.attention) {
    attention.push_back({{"student", pair.student}, {"teacher", pair.teacher}});
  }
  j["hidden_pairs"] = hidden;
  j["attention_pairs"] = attention;
  j["critic_dim"] = kCriticDim;
  return j.dump();
}

} // namespace kdscope::core
