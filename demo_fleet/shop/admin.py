"""Admin registrations of the demo shop, so its data can be browsed at /admin/."""

from django.contrib import admin

from .models import Category, Customer, Order, OrderItem, Product, Review


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "price", "stock"]
    list_select_related = ["category"]
    search_fields = ["name"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email"]
    search_fields = ["name", "email"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "created"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    inlines = [OrderItemInline]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["pk", "product", "customer", "rating", "created"]
    list_select_related = ["product", "customer"]
    raw_id_fields = ["product", "customer"]
